"""The benchmark's own test ground, which nothing but the benchmark writes to, and the
operator's own identity on it.

A test ground of `make cluster-up` may run a real node (kube-scheduler, kubelet) or whatever a
developer left there; their requests would count as the operator's and load the API server
the figures are about. So the benchmark starts a control plane of its own (tests/testground's,
in bench/.ground, on free loopback ports, with a certificate authority made for it: only the
clients it hands a kubeconfig reach it) and stops it at the end.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import yaml

from bench import attribution, probes
from testground import cluster
from testground.kubeapi import Api, load_endpoint

Json = dict[str, Any]
ROOT_DIR = Path(__file__).resolve().parent / ".ground"
TOKEN_SECONDS = 24 * 3600


def up(echo: cluster.Echo) -> cluster.State:
    """Starts the benchmark's control plane; refuses if one is already up in its directory."""
    cluster.beside(ROOT_DIR)
    state, started = cluster.up(ROOT_DIR, echo)
    if not started:
        raise cluster.ClusterError(
            f"a benchmark's test ground is already up in {ROOT_DIR} (another `make bench` is "
            "running, or one was killed before it could stop it); its figures would mix with "
            f"this run's. Stop it with `python -m testground --root {ROOT_DIR} down`"
        )
    return state


def down(echo: cluster.Echo) -> None:
    cluster.down(ROOT_DIR, echo)


def token_kubeconfig(admin: Json, token: str) -> Json:
    """The admin kubeconfig's cluster, with the operator's token as its only credential."""
    config = copy.deepcopy(admin)
    config["users"] = [{"name": attribution.USER, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = attribution.USER
    return config


async def _create(api: Api, path: str, body: Json) -> None:
    await api.request("POST", path, body)


async def operator_kubeconfig(api: Api, admin_kubeconfig: Path) -> Path:
    """The operator's ServiceAccount (cluster-admin, as the admin certificate it ran with
    before), the FlowSchemas that count its requests, and a kubeconfig with its token; checked:
    a request made with it is counted as the operator's."""
    ns, account = attribution.NAMESPACE, attribution.ACCOUNT
    await _create(api, "/api/v1/namespaces", {"metadata": {"name": ns}})
    await _create(api, f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": account}})
    await _create(
        api,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": attribution.PREFIX + "admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
        },
    )
    for schema in attribution.flow_schemas().values():
        await _create(api, "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", schema)
    _, granted = await api.request(
        "POST",
        f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        },
    )
    path = ROOT_DIR / "operator.kubeconfig"
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(token_kubeconfig(admin, granted["status"]["token"])))
    tmp.chmod(0o600)
    tmp.replace(path)
    await _check_counted(api, path)
    return path


async def _check_counted(api: Api, kubeconfig: Path, timeout: float = 30.0) -> None:
    # The new account, its binding and the schemas reach the API server's caches within a
    # moment; until then a request is refused (401, 403) or counted under another schema.
    key = ("GET", "*")
    operator = Api(load_endpoint(str(kubeconfig)), connections=1)
    path = f"/api/v1/namespaces/{attribution.NAMESPACE}/serviceaccounts/{attribution.ACCOUNT}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = ""
    try:
        while loop.time() < deadline:
            before = attribution.operator_requests(await probes.metrics(api))[key]
            code, body = await operator.request("GET", path, ok=(401, 403))
            after = attribution.operator_requests(await probes.metrics(api))[key]
            if code == 200 and after > before:
                return
            last = f"GET {path}: {code} {body.get('message', '')}; counted {after - before}"
            await asyncio.sleep(0.2)
    finally:
        await operator.close()
    raise cluster.ClusterError(
        f"the API server does not count the operator's requests as its own after {timeout:.0f} s "
        f"(FlowSchemas {attribution.PREFIX}*; last: {last})"
    )
