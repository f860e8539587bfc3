"""The test control plane: etcd, kube-apiserver and kube-controller-manager on loopback."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from testground import processes
from testground.pki import Pki, PkiError, make_pki, sign_client

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "v1.34.4"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's address: the range's first IP
ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTEXT = "cijob-testground"
DAEMONS = ("etcd", "kube-apiserver", "kube-controller-manager")
TOOLS = ("kubectl", "helm")
# No node-lifecycle or taint-eviction controller: the simulated node never heartbeats like a
# real kubelet would, and must never be tainted or have its pods evicted.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "job-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "replicaset-controller",
    "deployment-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    # quotas are the API server's and this controller's to decide (tests/integration)
    "resourcequota-controller",
)
START_TIMEOUT = 90.0

Echo = Callable[[str], None]


class ClusterError(RuntimeError):
    """The control plane could not start; the message says which part, why, and its log."""


@dataclass(frozen=True)
class Layout:
    """Where one checkout keeps its control plane: everything under its `.cluster/`."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd-data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def kcm_kubeconfig(self) -> Path:
        return self.root / "controller-manager.kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.jsonl"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def binary(self, name: str) -> Path:
        return self.bin / name


def default_root() -> Path:
    """This checkout's `.cluster/`, or $CIJOB_TESTGROUND_DIR."""
    env = os.environ.get("CIJOB_TESTGROUND_DIR")
    return Path(env).resolve() if env else REPO / ".cluster"


def beside(root: Path) -> Layout:
    """The layout of a test ground of its own at `root` (a test worker's, the chaos suite's,
    the benchmark's) using the binaries `make testground` built: its `bin` links to them."""
    layout = Layout(root)
    root.mkdir(parents=True, exist_ok=True)
    built = Layout(default_root()).bin.resolve()
    if layout.bin.is_symlink() and layout.bin.resolve() != built:
        layout.bin.unlink()
    if not layout.bin.exists() and not layout.bin.is_symlink():
        layout.bin.symlink_to(built)
    return layout


@dataclass
class State:
    """What `up` started: written to `.cluster/state.json`, read by `down` and the fixtures."""

    root: str
    kubeconfig: str
    server: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    ready: bool = False
    audit_policy: str = ""  # the apiserver's audit policy file; no audit log when empty

    def save(self, layout: Layout) -> None:
        tmp = layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(layout.state_file)

    @classmethod
    def load(cls, layout: Layout) -> State | None:
        try:
            data = json.loads(layout.state_file.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    # Two `up`s in one checkout (a shell and a pytest run) must not start two control planes.
    layout.root.mkdir(parents=True, exist_ok=True)
    with (layout.root / "lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _client_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_crt))
    ctx.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")
    except (OSError, ssl.SSLError) as e:
        return 0, str(e)


def _marker(layout: Layout) -> str:
    return str(layout.root)


def healthy(state: State, layout: Layout) -> bool:
    """Every daemon of `state` is alive and the apiserver answers /readyz."""
    if not state.ready:
        return False
    for name in DAEMONS:
        pid = state.pids.get(name)
        if pid is None or not processes.alive(pid, name, _marker(layout)):
            return False
    try:
        ctx = _client_context(layout.pki)
    except (OSError, ssl.SSLError):
        return False
    code, _ = _get(f"{state.server}/readyz", ctx)
    return code == 200


def status(root: Path | None = None) -> State | None:
    """The running control plane's state, or None when it is not up and healthy."""
    layout = Layout(root or default_root())
    state = State.load(layout)
    if state is not None and healthy(state, layout):
        return state
    return None


def _write_kubeconfig(path: Path, server: str, pki: Pki, crt: Path, key: Path, user: str) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_crt)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


def _fail(layout: Layout, name: str, port: int, why: str) -> ClusterError:
    log = layout.log(name)
    return ClusterError(
        f"{name} (127.0.0.1:{port}) {why}\n--- last lines of {log} ---\n{processes.tail(log)}"
    )


def _wait(
    layout: Layout,
    name: str,
    pid: int,
    port: int,
    probe: Callable[[], tuple[bool, str]],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        processes.reap()
        if not processes.alive(pid, name, _marker(layout)):
            processes.wait_exit(pid, 2)
            raise _fail(layout, name, port, "exited during start-up")
        ok, last = probe()
        if ok:
            return
        if time.monotonic() > deadline:
            raise _fail(layout, name, port, f"not ready after {timeout:.0f} s (last probe: {last})")
        time.sleep(0.2)


def _check_binaries(layout: Layout) -> None:
    missing = [n for n in (*DAEMONS, *TOOLS) if not os.access(layout.binary(n), os.X_OK)]
    if missing:
        raise ClusterError(
            f"missing test ground binaries in {layout.bin}: {', '.join(missing)}; "
            "build them with `make testground` (tests/cluster/build.sh)"
        )


def _stop_all(state: State, layout: Layout, echo: Echo) -> None:
    for name in reversed(DAEMONS):
        pid = state.pids.get(name)
        if pid is not None and processes.alive(pid, name, _marker(layout)):
            echo(f"testground: stopping {name} (pid {pid})")
            processes.stop(pid, name, _marker(layout))


def _start_etcd(layout: Layout, state: State, echo: Echo, fresh: bool = True) -> None:
    if fresh:
        state.ports.update(etcd=processes.free_port(), etcd_peer=processes.free_port())
        shutil.rmtree(layout.etcd_data, ignore_errors=True)
    client, peer = state.ports["etcd"], state.ports["etcd_peer"]
    argv = [
        str(layout.binary("etcd")),
        "--name=testground",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=testground=http://127.0.0.1:{peer}",
        "--initial-cluster-state=new",
        # A throwaway store: no fsync makes every write (and so every API write) much cheaper.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    echo(f"testground: starting etcd on 127.0.0.1:{client}")
    pid = processes.start(argv, layout.log("etcd"))
    state.pids["etcd"] = pid
    state.save(layout)

    def probe() -> tuple[bool, str]:
        code, body = _get(f"http://127.0.0.1:{client}/health")
        return code == 200 and '"health":"true"' in body.replace(" ", ""), f"{code} {body[:200]}"

    _wait(layout, "etcd", pid, client, probe, 30)


def _start_apiserver(layout: Layout, state: State, echo: Echo, fresh: bool = True) -> None:
    if fresh:
        state.ports["kube-apiserver"] = processes.free_port()
    port = state.ports["kube-apiserver"]
    state.server = f"https://127.0.0.1:{port}"
    pki = layout.pki
    argv = [
        str(layout.binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{state.ports['etcd']}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--advertise-address=127.0.0.1",
        # The `kubernetes` Endpoints may not hold a loopback address; nothing here needs them.
        "--endpoint-reconciler-type=none",
        f"--cert-dir={layout.root / 'apiserver-certs'}",
        f"--tls-cert-file={pki.serving_crt}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_crt}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--requestheader-client-ca-file={pki.front_proxy_ca_crt}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.front_proxy_crt}",
        f"--proxy-client-key-file={pki.front_proxy_key}",
        f"--kubelet-client-certificate={pki.kubelet_client_crt}",
        f"--kubelet-client-key={pki.kubelet_client_key}",
        # A simulated node can only be reached at its InternalIP (127.0.0.1), not its name.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        # /debug/pprof (admins only, by RBAC): the benchmark reads where the server spends its time.
        "--profiling=true",
        "--v=0",
    ]
    if state.audit_policy:
        # Appended to across restarts; blocking, so an entry is written before the response.
        argv += [
            f"--audit-policy-file={state.audit_policy}",
            f"--audit-log-path={layout.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",
        ]
    echo(f"testground: starting kube-apiserver on 127.0.0.1:{port}")
    pid = processes.start(argv, layout.log("kube-apiserver"))
    state.pids["kube-apiserver"] = pid
    state.save(layout)
    ctx = _client_context(pki)

    def probe() -> tuple[bool, str]:
        code, body = _get(f"{state.server}/readyz", ctx)
        return code == 200, f"{code} {body[-300:]}"

    _wait(layout, "kube-apiserver", pid, port, probe, START_TIMEOUT)


# The controller-manager's client limits in tests: its default 20 requests/s per controller
# would make garbage collection and the Job controller, not the code under test, the
# bottleneck. The benchmark sets them per run (restart_controller_manager).
KCM_QPS = 100
KCM_BURST = 200


def _start_controller_manager(
    layout: Layout, state: State, echo: Echo, qps: int = KCM_QPS, burst: int = KCM_BURST
) -> None:
    port = processes.free_port()
    state.ports["kube-controller-manager"] = port
    pki = layout.pki
    kc = layout.kcm_kubeconfig
    _write_kubeconfig(kc, state.server, pki, pki.kcm_crt, pki.kcm_key, "kube-controller-manager")
    argv = [
        str(layout.binary("kube-controller-manager")),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={layout.root / 'controller-manager-certs'}",
        f"--controllers={','.join(CONTROLLERS)}",
        "--use-service-account-credentials=true",
        f"--root-ca-file={pki.ca_crt}",
        f"--service-account-private-key-file={pki.sa_key}",
        "--leader-elect=false",
        f"--kube-api-qps={qps}",
        f"--kube-api-burst={burst}",
        "--v=0",
    ]
    echo(f"testground: starting kube-controller-manager on 127.0.0.1:{port}")
    pid = processes.start(argv, layout.log("kube-controller-manager"))
    state.pids["kube-controller-manager"] = pid
    state.save(layout)
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # its serving cert is self-signed at start-up

    def probe() -> tuple[bool, str]:
        code, body = _get(f"https://127.0.0.1:{port}/healthz", insecure)
        return code == 200, f"{code} {body[-300:]}"

    _wait(layout, "kube-controller-manager", pid, port, probe, 60)

    # Pods cannot be created in a namespace before its `default` ServiceAccount exists.
    ctx = _client_context(pki)
    url = f"{state.server}/api/v1/namespaces/default/serviceaccounts/default"

    def sa_probe() -> tuple[bool, str]:
        code, body = _get(url, ctx)
        return code == 200, f"GET default/default ServiceAccount: {code} {body[-200:]}"

    _wait(layout, "kube-controller-manager", pid, port, sa_probe, 60)


def _start(layout: Layout, echo: Echo, audit_policy: Path | None) -> State:
    state = State(root=str(layout.root), kubeconfig=str(layout.kubeconfig), server="")
    state.audit_policy = str(audit_policy or "")
    state.started_at = time.time()
    shutil.rmtree(layout.logs, ignore_errors=True)
    try:
        make_pki(layout.pki.dir, SERVICE_IP)
    except PkiError as e:
        raise ClusterError(f"cannot make the test ground's certificates: {e}") from e
    try:
        _start_etcd(layout, state, echo)
        _start_apiserver(layout, state, echo)
        _write_kubeconfig(
            layout.kubeconfig, state.server, layout.pki, layout.pki.admin_crt,
            layout.pki.admin_key, "cijob-testground-admin",
        )  # fmt: skip
        _start_controller_manager(layout, state, echo)
    except BaseException:
        _stop_all(state, layout, echo)
        layout.state_file.unlink(missing_ok=True)
        raise
    state.ready = True
    state.save(layout)
    return state


def up(
    root: Path | None = None, echo: Echo = print, audit_policy: Path | None = None
) -> tuple[State, bool]:
    """Starts the control plane unless it is already up and healthy.

    `audit_policy` (off by default) makes the apiserver write an audit log to
    `logs/audit.jsonl`. Returns the state and whether this call started it. Raises
    ClusterError with the reason.
    """
    layout = Layout(root or default_root())
    with _locked(layout):
        old = State.load(layout)
        if old is not None:
            if healthy(old, layout):
                echo(f"testground: already up at {old.server} (KUBECONFIG={old.kubeconfig})")
                return old, False
            echo("testground: cleaning up a control plane that is no longer healthy")
            _stop_all(old, layout, echo)
            layout.state_file.unlink(missing_ok=True)
        _check_binaries(layout)
        began = time.monotonic()
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                state = _start(layout, echo, audit_policy)
                break
            except ClusterError as e:
                # A free port can be taken between choosing it and binding it: choose again.
                if "address already in use" not in str(e) or attempt == attempts:
                    raise
                echo(f"testground: a port was taken, retrying ({e.args[0].splitlines()[0]})")
        echo(
            f"testground: up in {time.monotonic() - began:.1f} s at {state.server}; "
            f"export KUBECONFIG={layout.kubeconfig}"
        )
        return state, True


def restart_controller_manager(
    root: Path | None = None, *, qps: int = KCM_QPS, burst: int = KCM_BURST, echo: Echo = print
) -> None:
    """Restarts kube-controller-manager of a running control plane with other client limits."""
    layout = Layout(root or default_root())
    with _locked(layout):
        state = State.load(layout)
        if state is None or not healthy(state, layout):
            raise ClusterError("the test ground is not up: run `make cluster-up`")
        pid = state.pids.get("kube-controller-manager")
        if pid is not None and processes.alive(pid, "kube-controller-manager", _marker(layout)):
            processes.stop(pid, "kube-controller-manager", _marker(layout))
        echo(
            f"testground: kube-controller-manager with --kube-api-qps={qps} "
            f"--kube-api-burst={burst}"
        )
        _start_controller_manager(layout, state, echo, qps, burst)
        state.save(layout)


def restart(name: str, root: Path | None = None, echo: Echo = print) -> None:
    """Stops etcd or kube-apiserver of a running control plane and starts it again on the same
    port with the same data (a daemon crash or upgrade, as the chaos suite plays it)."""
    starts = {"etcd": _start_etcd, "kube-apiserver": _start_apiserver}
    if name not in starts:
        raise ValueError(f"restart: {name} is not one of {sorted(starts)}")
    layout = Layout(root or default_root())
    with _locked(layout):
        state = State.load(layout)
        if state is None:
            raise ClusterError("the test ground is not up: run `make cluster-up`")
        pid = state.pids.get(name)
        if pid is not None:
            echo(f"testground: restarting {name} (pid {pid})")
            processes.stop(pid, name, _marker(layout))
        starts[name](layout, state, echo, fresh=False)
        state.save(layout)


def client_kubeconfig(user: str, group: str, root: Path | None = None) -> Path:
    """A kubeconfig of a new client certificate for `user` in `group` (`system:masters` is
    cluster-admin): distinct clients show as distinct users in the audit log."""
    layout = Layout(root or default_root())
    state = State.load(layout)
    if state is None:
        raise ClusterError("the test ground is not up: run `make cluster-up`")
    pki = layout.pki
    crt, key = pki.dir / f"user-{user}.crt", pki.dir / f"user-{user}.key"
    try:
        sign_client(pki, key, crt, f"/O={group}/CN={user}")
    except PkiError as e:
        raise ClusterError(f"cannot make a certificate for {user}: {e}") from e
    path = layout.root / f"{user}.kubeconfig"
    _write_kubeconfig(path, state.server, pki, crt, key, user)
    return path


def down(root: Path | None = None, echo: Echo = print) -> bool:
    """Stops what `up` started (by pid) and removes its state; returns whether anything ran."""
    layout = Layout(root or default_root())
    with _locked(layout):
        state = State.load(layout)
        if state is None:
            echo("testground: not running")
            return False
        _stop_all(state, layout, echo)
        layout.state_file.unlink(missing_ok=True)
        layout.kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(layout.etcd_data, ignore_errors=True)
        echo("testground: down")
        return True
