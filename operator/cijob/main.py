"""`cijob-operator`: runs the operator against the current kubeconfig or in-cluster account."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

import kopf
from kubernetes.aio import client, config

from cijob.config import ConfigError, OperatorConfig, read_config
from cijob.events import EventPoster
from cijob.handlers import register
from cijob.health import serve_health, task_alive
from cijob.kopf_settings import configure
from cijob.kube import Kube
from cijob.leader import Elector, Ended
from cijob.metrics import Metrics
from cijob.reconcile import Reconciler

log = logging.getLogger("cijob")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
USER_AGENT = "cijob-operator"
# Lease requests are one at a time; one connection of their own is all they need.
LEASE_CONNECTIONS = 1


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
    p.add_argument(
        "--health-port", type=int, default=8080, help="port of GET /healthz and GET /metrics"
    )
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


def _identity() -> str:
    """This replica's name in the Lease and in its User-Agent: unique per process."""
    return f"{socket.gethostname()}-{os.getpid()}"


def user_agent(identity: str) -> str:
    """What every request of this replica carries, so the API server's audit log can tell
    which replica made a write."""
    return f"{USER_AGENT}/{identity}"


async def _configuration(kubeconfig: str | None) -> client.Configuration:
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        await config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=cfg
        )
    else:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    if not any(os.environ.get(v) for v in _PROXY_VARIABLES):
        # With trust_env, aiohttp looks up proxies and reads ~/.netrc in a thread on every
        # request; without a proxy to find, that is only cost.
        cfg.client_session_kwargs = {"trust_env": False}
    return cfg


def _api_client(cfg: client.Configuration, connections: int, agent: str) -> client.ApiClient:
    """A client with a connection pool of its own, on a copy of `cfg`."""
    cfg = copy.deepcopy(cfg)
    cfg.connection_pool_maxsize = connections
    api_client = client.ApiClient(cfg)
    api_client.user_agent = agent
    return api_client


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Connection(kopf.ConnectionInfo):
    """kopf's connection info, with our User-Agent (kopf keeps one it is given)."""

    user_agent: str = USER_AGENT

    def as_http_headers(self) -> dict[str, str]:
        return {**super().as_http_headers(), "User-Agent": self.user_agent}


def _login_from(api_client: client.ApiClient) -> kopf.ConnectionInfo:
    """kopf's connection from the same kubeconfig, so both clients act as one identity."""
    cfg = api_client.configuration
    token = (cfg.api_key or {}).get("BearerToken") or (cfg.api_key or {}).get("authorization")
    # The in-cluster loader stores "bearer <token>" (lower case), kubeconfigs "Bearer <token>".
    if token and token[:7].lower() == "bearer ":
        token = token[len("bearer ") :]
    return _Connection(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        token=token,
        default_namespace=None,
        user_agent=api_client.user_agent,
    )


def _on_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`. kopf installs its own handlers while it runs (it then
    stops itself); this puts ours back afterwards."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run(args: argparse.Namespace, operator_config: OperatorConfig) -> int:
    """Runs the operator until it is stopped; the process's exit status."""
    stop = asyncio.Event()
    _on_stop_signals(stop)
    identity = _identity()
    agent = user_agent(identity)
    cfg = await _configuration(args.kubeconfig)
    # A connection for every request the workers (a pod create and a status patch each, at
    # most) and the event poster make at once: the default pool of 4 serialises busy bursts.
    api_client = _api_client(cfg, 2 * operator_config.workers, agent)
    # The Lease's own client: a renewal never waits for a connection behind the workers.
    lease_client = _api_client(cfg, LEASE_CONNECTIONS, agent) if args.leader_elect else None
    elector = (
        Elector(lease_client, args.lease_namespace, args.lease_name, identity)
        if lease_client is not None
        else None
    )
    namespaces = args.namespace or operator_config.namespaces
    metrics = Metrics(operator_config.metrics.enabled, operator_config.metrics.namespaceLabel)
    kube = Kube(api_client, fence=elector.holds if elector is not None else None, metrics=metrics)
    events = EventPoster(kube)
    reconciler = Reconciler(
        kube,
        operator_config,
        events if operator_config.events else (lambda *_: None),
        namespaces=namespaces,
        metrics=metrics,
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
        await reconciler.ports.close()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: object) -> None:
        # Before kopf's own exit, which waits 5 s for any task still running in the loop:
        # the workers, and kopf's own waiter on `stop` when a signal stopped it instead.
        stop.set()
        await stop_workers()

    # Our own endpoint, not kopf's: a standby replica has no kopf running yet, and must still
    # pass its probes while it waits for the Lease.
    running: list[asyncio.Task[None]] = []
    runner = await serve_health(
        args.health_host, args.health_port, lambda: all(task_alive(t) for t in running), metrics
    )

    async def operate() -> None:
        task = asyncio.current_task()
        if task is not None:
            running.append(task)
        metrics.leader.set(1)
        workers.append(asyncio.create_task(reconciler.work(), name="cijob workers"))
        running.extend(workers)
        operator = asyncio.create_task(
            kopf.operator(
                registry=registry,
                standalone=True,
                namespaces=namespaces,
                clusterwide=not namespaces,
                stop_flag=stop,
            ),
            name="kopf",
        )
        try:
            # Waiting on the task, not in it: a cancel (the lease lost) reaches us at once,
            # not after kopf's own shutdown, so the workers stop first.
            await asyncio.wait([operator])
            operator.result()
            stop.set()  # kopf returns only when told to stop (by `stop` or its own signals)
        finally:
            metrics.leader.set(0)
            await stop_workers()  # kopf runs no cleanup handlers when it is cancelled
            operator.cancel()
            await asyncio.gather(operator, return_exceptions=True)
            _on_stop_signals(stop)

    try:
        if elector is None:
            await operate()
            return 0
        log.info(
            "waiting for the leader lease %s/%s as %s",
            args.lease_namespace,
            args.lease_name,
            identity,
        )
        if await elector.run(operate, stop) is Ended.LOST:
            return 1  # a new process starts clean as a follower
        return 0
    finally:
        await runner.cleanup()
        for c in (api_client, lease_client):
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.close()  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        operator_config = read_config(args.config)
    except ConfigError as e:
        print(f"cijob-operator: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(run(args, operator_config)))


if __name__ == "__main__":
    main()
