"""`cijob-operator`: runs the operator against the current kubeconfig or in-cluster account."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence

import kopf
from kubernetes.aio import client, config

from cijob.config import OperatorConfig, load_config
from cijob.events import EventPoster
from cijob.handlers import register
from cijob.health import serve_health, task_alive
from cijob.kopf_settings import configure
from cijob.kube import Kube
from cijob.leader import Elector
from cijob.reconcile import Reconciler

log = logging.getLogger("cijob")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cijob-operator", description=__doc__)
    p.add_argument("--config", help="configuration file (YAML); else $CIJOB_CONFIG_FILE")
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="namespace to watch (repeat for several); all namespaces when none is given",
    )
    p.add_argument("--kubeconfig", help="kubeconfig file; else $KUBECONFIG or in-cluster")
    p.add_argument("--health-port", type=int, default=8080, help="port of GET /healthz")
    p.add_argument("--health-host", default="0.0.0.0", help="address of the health endpoint")
    p.add_argument(
        "--leader-elect",
        action="store_true",
        help="run only while holding the Lease, so more replicas are hot standbys",
    )
    p.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    p.add_argument("--lease-name", default="cijob-operator")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return p.parse_args(argv)


async def _api_client(kubeconfig: str | None, workers: int) -> client.ApiClient:
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        await config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=cfg
        )
    else:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    # A connection for every request the workers (a pod create and a status patch each, at
    # most) and the event poster make at once: the default pool of 4 serialises busy bursts.
    cfg.connection_pool_maxsize = 2 * workers
    if not any(os.environ.get(v) for v in _PROXY_VARIABLES):
        # With trust_env, aiohttp looks up proxies and reads ~/.netrc in a thread on every
        # request; without a proxy to find, that is only cost.
        cfg.client_session_kwargs = {"trust_env": False}
    return client.ApiClient(cfg)


def _login_from(api_client: client.ApiClient) -> kopf.ConnectionInfo:
    """kopf's connection from the same kubeconfig, so both clients act as one identity."""
    cfg = api_client.configuration
    token = (cfg.api_key or {}).get("BearerToken") or (cfg.api_key or {}).get("authorization")
    if token and token.startswith("Bearer "):
        token = token[len("Bearer ") :]
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        token=token,
        default_namespace=None,
    )


async def run(args: argparse.Namespace, operator_config: OperatorConfig) -> None:
    api_client = await _api_client(args.kubeconfig, operator_config.workers)
    namespaces = args.namespace or operator_config.namespaces
    kube = Kube(api_client)
    events = EventPoster(kube)
    reconciler = Reconciler(
        kube,
        operator_config,
        events if operator_config.events else (lambda *_: None),
        namespaces=namespaces,
    )
    registry = kopf.OperatorRegistry()
    register(registry, reconciler)

    @kopf.on.login(registry=registry)
    def login(**_: object) -> kopf.ConnectionInfo:
        return _login_from(api_client)

    @kopf.on.startup(registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: object) -> None:
        configure(settings)

    workers: list[asyncio.Task[None]] = []

    async def stop_workers() -> None:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        workers.clear()
        await events.close()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: object) -> None:
        # Before kopf's own exit, which waits 5 s for any task still running in the loop.
        await stop_workers()

    # Our own endpoint, not kopf's: a standby replica has no kopf running yet, and must still
    # pass its probes while it waits for the Lease.
    running: list[asyncio.Task[None]] = []
    runner = await serve_health(
        args.health_host, args.health_port, lambda: all(task_alive(t) for t in running)
    )

    async def operate() -> None:
        task = asyncio.current_task()
        if task is not None:
            running.append(task)
        workers.append(asyncio.create_task(reconciler.work(), name="cijob workers"))
        running.extend(workers)
        try:
            await kopf.operator(
                registry=registry,
                standalone=True,
                namespaces=namespaces,
                clusterwide=not namespaces,
            )
        finally:
            await stop_workers()  # kopf runs no cleanup handlers when it is cancelled

    try:
        if not args.leader_elect:
            await operate()
            return
        identity = f"{socket.gethostname()}-{os.getpid()}"
        log.info(
            "waiting for the leader lease %s/%s as %s",
            args.lease_namespace,
            args.lease_name,
            identity,
        )
        await Elector(api_client, args.lease_namespace, args.lease_name, identity).run(operate)
        sys.exit(1)  # a new process starts clean as a follower
    finally:
        await runner.cleanup()
        with contextlib.suppress(Exception):
            await api_client.close()  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    operator_config = load_config(args.config)
    asyncio.run(run(args, operator_config))


if __name__ == "__main__":
    main()
