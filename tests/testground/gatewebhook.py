"""A mutating webhook that gates pods as Kueue's does: `kueue.x-k8s.io/admission` on every pod
labelled `kueue.x-k8s.io/queue-name`, in the namespaces it is registered for."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client

from testground.pki import Pki

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
ADMISSION_GATE = "kueue.x-k8s.io/admission"


def _review(request: dict[str, Any]) -> dict[str, Any]:
    patch = [{"op": "add", "path": "/spec/schedulingGates", "value": [{"name": ADMISSION_GATE}]}]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": request["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        },
    }


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        out = json.dumps(_review(body["request"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_: Any) -> None:
        pass


class GateWebhook:
    """Serves on 127.0.0.1 with the API server's own serving certificate (valid for that
    address, signed by the test ground's CA) and registers itself for `namespace`."""

    def __init__(self, api: client.ApiClient, pki_dir: Path, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.name = f"gate-{namespace}"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pki = Pki(pki_dir)
        ctx.load_cert_chain(str(pki.serving_crt), str(pki.serving_key))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.ca = base64.b64encode(pki.ca_crt.read_bytes()).decode()

    def __enter__(self) -> GateWebhook:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        hook = {
            "name": "gate.kueue.test",
            "clientConfig": {"url": f"https://127.0.0.1:{port}/mutate", "caBundle": self.ca},
            "rules": [
                {
                    "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                    "resources": ["pods"], "scope": "Namespaced",
                }
            ],
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
            },
            "objectSelector": {"matchExpressions": [{"key": QUEUE_LABEL, "operator": "Exists"}]},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
        }  # fmt: skip
        body: Any = {"metadata": {"name": self.name}, "webhooks": [hook]}
        client.AdmissionregistrationV1Api(self.api).create_mutating_webhook_configuration(body)
        return self

    def __exit__(self, *_: object) -> None:
        client.AdmissionregistrationV1Api(self.api).delete_mutating_webhook_configuration(self.name)
        self.server.shutdown()
        self.server.server_close()
