"""kubectl's connection flags (`--kubeconfig`, `--context`, `-n/--namespace`) and the client."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")


@dataclass
class Kube:
    """The API clients and the namespace a command works in."""

    api: Any
    namespace: str

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)


def connect(args: argparse.Namespace) -> Kube:
    """A client as kubectl would make one from the same flags; in-cluster when no kubeconfig."""
    try:
        contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return Kube(client.ApiClient(), args.namespace or "default")
    chosen = (
        next((c for c in contexts if c["name"] == args.context), None) if args.context else current
    )
    if args.context and chosen is None:
        raise config.ConfigException(f"context {args.context!r} is not in the kubeconfig")
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, context=args.context
    )
    namespace = args.namespace or (chosen or {}).get("context", {}).get("namespace") or "default"
    return Kube(api, namespace)
