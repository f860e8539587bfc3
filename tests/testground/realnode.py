"""A real node for the test ground: containerd + runc + CNI bridge + kubelet + kube-scheduler,
and a private registry (Debian's docker-registry, htpasswd) holding small test images.

    state = up()      # needs `python -m testground up` first; idempotent
    down()            # stops what up() started, by pid; removes the Node
    status()          # the node's state when everything is alive and the Node is Ready

Everything lives under `.cluster/node/` (logs in `.cluster/logs/`). Needs root, Debian's runc,
containerd, containernetworking-plugins, docker-registry, umoci, skopeo, busybox-static,
apache2-utils (htpasswd) and gcc, and the kubelet and kube-scheduler binaries
(`KUBELET=1 tests/cluster/build.sh`). See docs/real-node.md.

The Node registers with the taint `cijob.dev/real-node:NoSchedule`, so the kube-scheduler
never puts the kubelet simulator's pods on it: a pod for the real node tolerates the taint and
selects the node (`nodeSelector: {kubernetes.io/hostname: cijob-realnode}`).

Pods reach the API server as in a cluster, at the `kubernetes` Service's address and port
(10.96.0.1:443, which the kubelet gives every container as KUBERNETES_SERVICE_HOST/PORT): the
node puts that address on its own bridge and socat there relays to the API server on
127.0.0.1, so a pod's API traffic only ever goes to an address of this machine (see
docs/real-node.md, "Pods and the API server").
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template

from testground import cluster, debimages, helperimage, ociimages, operatorimage, processes
from testground.pki import Pki, PkiError, _sign

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "tests" / "cluster" / "node"
NODE_NAME = "cijob-realnode"
TAINT_KEY = "cijob.dev/real-node"
POD_CIDR = "10.250.0.0/24"
BRIDGE = "cijob0"
# The link holding the `kubernetes` Service's address on this node (see _api_relay).
API_LINK = "cijob-api"
REGISTRY_PORT = int(os.environ.get("CIJOB_REGISTRY_PORT", "5555"))
REGISTRY_USER = "cijob"
SANDBOX_IMAGE = "localhost/cijob/pause:3.10"
CNI_BIN = Path("/usr/lib/cni")
# socat: the relay from the `kubernetes` Service's address to the API server (_api_relay).
DAEMONS = ("docker-registry", "socat", "containerd", "kubelet", "kube-scheduler")
# The `kubernetes` Service's port (the API server's Service, created by the API server itself).
API_SERVICE_PORT = 443
READY_TIMEOUT = 90.0

Echo = Callable[[str], None]


class NodeError(RuntimeError):
    """The real node could not start; the message says which part, why, and its log."""


@dataclass(frozen=True)
class NodeLayout:
    """Where the real node keeps its files: `.cluster/node/`."""

    cluster: cluster.Layout

    @property
    def root(self) -> Path:
        return self.cluster.root / "node"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.root / "kubelet.kubeconfig"

    @property
    def scheduler_kubeconfig(self) -> Path:
        return self.root / "scheduler.kubeconfig"


@dataclass
class NodeState:
    """What up() started, in `.cluster/node/state.json`."""

    node_name: str
    node_ip: str
    registry: str
    registry_user: str
    registry_password: str
    socket: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> ref, digest
    timings: dict[str, float] = field(default_factory=dict)
    ready: bool = False

    def save(self, layout: NodeLayout) -> None:
        tmp = layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(layout.state_file)

    @classmethod
    def load(cls, layout: NodeLayout) -> NodeState | None:
        try:
            return cls(**json.loads(layout.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def image(self, name: str) -> str:
        """The registry reference of test image `name` (see ociimages.IMAGES)."""
        return self.images[name]["ref"]

    def digest(self, name: str) -> str:
        return self.images[name]["digest"]

    def docker_auth_config(self) -> str:
        """A DOCKER_AUTH_CONFIG for the test registry."""
        import base64

        auth = base64.b64encode(f"{self.registry_user}:{self.registry_password}".encode())
        return json.dumps({"auths": {self.registry: {"auth": auth.decode()}}})


# --- helpers ----------------------------------------------------------------------------------


def _marker(layout: NodeLayout) -> str:
    return str(layout.root)


def _render(name: str, dest: Path, **values: str) -> None:
    text = Template((TEMPLATES / name).read_text()).substitute(values)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)


def _tool(name: str, package: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise NodeError(f"the '{name}' command is missing (apt-get install {package})")
    return exe


def _kubectl(layout: NodeLayout, *args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(
        [str(layout.cluster.binary("kubectl")), f"--kubeconfig={layout.cluster.kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise NodeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _kubectl_apply(layout: NodeLayout, obj: dict) -> None:  # type: ignore[type-arg]
    _kubectl(layout, "apply", "-f", "-", input=json.dumps(obj))


def _ctr(layout: NodeLayout, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        [_tool("ctr", "containerd"), f"--address={layout.socket}", "--namespace=k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise NodeError(f"ctr {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def node_ip() -> str:
    """The address of the default route's interface (the kubelet refuses loopback)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "route", "get", "192.0.2.255"], capture_output=True, text=True
    ).stdout.split()
    if "src" in out:
        return out[out.index("src") + 1]
    raise NodeError(f"cannot find this machine's IPv4 address (ip route get: {out})")


def _fail(layout: NodeLayout, name: str, why: str) -> NodeError:
    log = layout.cluster.log(name)
    return NodeError(f"{name} {why}\n--- last lines of {log} ---\n{processes.tail(log)}")


def _wait(
    layout: NodeLayout,
    name: str,
    pid: int,
    probe: Callable[[], tuple[bool, str]],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        processes.reap()
        if not processes.alive(pid, name, _marker(layout)):
            raise _fail(layout, name, "exited during start-up")
        ok, last = probe()
        if ok:
            return
        if time.monotonic() > deadline:
            raise _fail(layout, name, f"not ready after {timeout:.0f} s (last probe: {last})")
        time.sleep(0.25)


@contextlib.contextmanager
def _locked(layout: NodeLayout) -> Iterator[None]:
    layout.root.mkdir(parents=True, exist_ok=True)
    with (layout.root / "lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def requirements(layout: NodeLayout | None = None) -> list[str]:
    """What this machine lacks for a real node (empty: it can try)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the kubelet, containerd and runc need it)")
    for cmd, pkg in (
        ("runc", "runc"),
        ("containerd", "containerd"),
        ("ctr", "containerd"),
        ("docker-registry", "docker-registry"),
        ("umoci", "umoci"),
        ("skopeo", "skopeo"),
        ("htpasswd", "apache2-utils"),
        ("gcc", "gcc"),
        ("ip", "iproute2"),
        ("socat", "socat"),
        ("mmdebstrap", "mmdebstrap"),  # the PostgreSQL test image (debimages.py)
    ):
        if shutil.which(cmd) is None:
            missing.append(f"{cmd} (apt-get install {pkg})")
    if not (CNI_BIN / "bridge").exists():
        missing.append(f"{CNI_BIN}/bridge (apt-get install containernetworking-plugins)")
    if not ociimages.BUSYBOX.exists():
        missing.append("/bin/busybox (apt-get install busybox-static)")
    lay = layout or NodeLayout(cluster.Layout(cluster.default_root()))
    for b in ("kubelet", "kube-scheduler"):
        if not os.access(lay.cluster.binary(b), os.X_OK):
            missing.append(f"{lay.cluster.binary(b)} (KUBELET=1 tests/cluster/build.sh)")
    return missing


# --- certificates -----------------------------------------------------------------------------


def _certs(layout: NodeLayout, server: str) -> None:
    ca = layout.cluster.pki
    pki = layout.pki
    pki.dir.mkdir(parents=True, exist_ok=True)
    client = (
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n"
    )
    kubelet_crt, kubelet_key = pki.dir / "kubelet-client.crt", pki.dir / "kubelet-client.key"
    sched_crt, sched_key = pki.dir / "scheduler.crt", pki.dir / "scheduler.key"
    try:
        # The Node authorizer and NodeRestriction know a node by exactly this identity.
        _sign(
            pki,
            kubelet_key,
            kubelet_crt,
            f"/O=system:nodes/CN=system:node:{NODE_NAME}",
            client,
            ca=(ca.ca_crt, ca.ca_key),
        )
        _sign(
            pki,
            sched_key,
            sched_crt,
            "/CN=system:kube-scheduler",
            client,
            ca=(ca.ca_crt, ca.ca_key),
        )
    except PkiError as e:
        raise NodeError(f"cannot make the node's certificates: {e}") from e
    write = cluster._write_kubeconfig
    write(
        layout.kubelet_kubeconfig, server, ca, kubelet_crt, kubelet_key, f"system:node:{NODE_NAME}"
    )
    write(layout.scheduler_kubeconfig, server, ca, sched_crt, sched_key, "system:kube-scheduler")


# --- the registry -----------------------------------------------------------------------------


def _registry_probe(registry: str) -> tuple[bool, str]:
    # Unauthenticated /v2/ must answer 401 with a Basic challenge: the registry is up and
    # really demands credentials.
    code, body = cluster._get(f"http://{registry}/v2/")
    return code == 401, f"GET /v2/: {code} {body[:200]}"


def _start_registry(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    reg = layout.root / "registry"
    (reg / "data").mkdir(parents=True, exist_ok=True)
    htpasswd = subprocess.run(
        [_tool("htpasswd", "apache2-utils"), "-Bbn", state.registry_user, state.registry_password],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (reg / "htpasswd").write_text(htpasswd)
    config = reg / "config.yml"
    _render(
        "registry.yml",
        config,
        root=str(layout.root),
        registry=state.registry,
        secret=secrets.token_hex(16),
    )
    code, _ = cluster._get(f"http://{state.registry}/v2/", timeout=1)
    if code != 0:
        raise NodeError(
            f"something already listens on {state.registry} (HTTP {code}); "
            "set CIJOB_REGISTRY_PORT to another port"
        )
    echo(f"realnode: starting docker-registry on {state.registry} (htpasswd auth)")
    argv = [_tool("docker-registry", "docker-registry"), "serve", str(config)]
    pid = processes.start(argv, layout.cluster.log("docker-registry"))
    state.pids["docker-registry"] = pid
    state.save(layout)
    _wait(layout, "docker-registry", pid, lambda: _registry_probe(state.registry), 30)


def _images(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    began = time.monotonic()
    shutil.rmtree(layout.images, ignore_errors=True)
    try:
        names = ociimages.build_all(layout.images)
        pushed = [n for n in names if n != "pause"]
        digests = ociimages.push_all(
            layout.images, state.registry, state.registry_user, state.registry_password, pushed
        )
    except ociimages.ImageError as e:
        raise NodeError(f"cannot build or push the test images: {e}") from e
    # PostgreSQL from Debian's packages, built once and cached (debimages.py).
    try:
        for image in debimages.IMAGES:
            deb_layout, _ = debimages.ensure(image, echo)
            for tag in debimages.tags(image):
                digests[ociimages.reference(state.registry, tag)] = debimages.push(
                    deb_layout, tag, state.registry, state.registry_user, state.registry_password
                )
                pushed.append(tag)
    except (ociimages.ImageError, operatorimage.ImageBuildError) as e:
        raise NodeError(f"cannot build or push the PostgreSQL test images: {e}") from e
    for name in pushed:
        ref = ociimages.reference(state.registry, name)
        state.images[name] = {"ref": ref, "digest": digests[ref]}
    # git, a shell, ssh and lighttpd from Debian's packages: the clone container's image in the
    # tests, the git server's, and one to try jobs with by hand (docs/source.md).
    try:
        helper = helperimage.ensure(echo)
        args = (state.registry, state.registry_user, state.registry_password)
        state.images[helperimage.NAME] = {
            "ref": ociimages.reference(state.registry, helperimage.NAME),
            "digest": ociimages.push(helper, helperimage.NAME, *args),
        }
    except (operatorimage.ImageBuildError, ociimages.ImageError) as e:
        raise NodeError(f"cannot build or push the helper image: {e}") from e
    state.timings["images"] = round(time.monotonic() - began, 1)
    echo(f"realnode: built and pushed {', '.join(pushed)} in {state.timings['images']} s")


# --- the pods' way to the API server ----------------------------------------------------------


def _api_relay(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    """Makes the `kubernetes` Service's address (cluster.SERVICE_IP:443) an address of this
    node, on its pod bridge, with socat relaying it to the API server on loopback.

    Pods get KUBERNETES_SERVICE_HOST/PORT from the kubelet and route to it through the bridge
    (their gateway), so in-cluster configuration works unchanged and the API server's serving
    certificate (which names that address) verifies. kube-proxy is not needed: the API server
    listens on 127.0.0.1 only, and an EndpointSlice may not hold a loopback address, so a
    kube-proxy rule could only point at a node address where something must relay anyway;
    and its rules would go into this machine's shared iptables.
    """
    control = cluster.status(layout.cluster.root)
    if control is None:
        raise NodeError("the test ground is not up: run `python -m testground up` first")
    api_port = control.ports["kube-apiserver"]
    ip = [_tool("ip", "iproute2")]
    # A bridge of its own, without ports (this kernel has no dummy interfaces, and the CNI
    # bridge plugin refuses a pod bridge holding another address): up, its address is local.
    if subprocess.run([*ip, "link", "show", API_LINK], capture_output=True).returncode != 0:
        subprocess.run([*ip, "link", "add", API_LINK, "type", "bridge"], check=True)
    subprocess.run(
        [*ip, "addr", "replace", f"{cluster.SERVICE_IP}/32", "dev", API_LINK], check=True
    )
    subprocess.run([*ip, "link", "set", API_LINK, "up"], check=True)
    lock = layout.root / "socat.lock"  # in the node's directory: processes.alive()'s marker
    lock.unlink(missing_ok=True)  # a relay killed with SIGKILL leaves it; we hold the node lock
    argv = [
        _tool("socat", "socat"),
        # Notices too: each accepted connection and its peer, so a test can see who came.
        "-d",
        "-d",
        f"-L{lock}",
        f"TCP-LISTEN:{API_SERVICE_PORT},bind={cluster.SERVICE_IP},fork,reuseaddr",
        f"TCP:127.0.0.1:{api_port}",
    ]
    echo(
        f"realnode: relaying {cluster.SERVICE_IP}:{API_SERVICE_PORT} (the kubernetes Service) "
        f"to the API server on 127.0.0.1:{api_port}"
    )
    pid = processes.start(argv, layout.cluster.log("socat"))
    state.pids["socat"] = pid
    state.save(layout)
    ctx = cluster._client_context(layout.cluster.pki)

    def probe() -> tuple[bool, str]:
        code, body = cluster._get(f"https://{cluster.SERVICE_IP}:{API_SERVICE_PORT}/readyz", ctx)
        return code == 200, f"GET /readyz through the relay: {code} {body[-200:]}"

    _wait(layout, "socat", pid, probe, 15)


# --- containerd -------------------------------------------------------------------------------


def _start_containerd(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    for d in ("containerd/root", "cni/net.d", "cni/ipam"):
        (layout.root / d).mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(parents=True, exist_ok=True)
    config = layout.root / "containerd" / "config.toml"
    _render(
        "containerd.toml",
        config,
        root=str(layout.root),
        run=str(layout.run),
        sandbox_image=SANDBOX_IMAGE,
        runc=_tool("runc", "runc"),
        cni_bin=str(CNI_BIN),
    )
    hosts = layout.root / "containerd" / "certs.d" / state.registry / "hosts.toml"
    _render("hosts.toml", hosts, registry=state.registry)
    _render(
        "bridge.conflist",
        layout.root / "cni" / "net.d" / "10-cijob-bridge.conflist",
        bridge=BRIDGE,
        pod_cidr=POD_CIDR,
        root=str(layout.root),
    )
    echo(f"realnode: starting containerd ({layout.socket})")
    argv = [_tool("containerd", "containerd"), f"--config={config}"]
    pid = processes.start(argv, layout.cluster.log("containerd"))
    state.pids["containerd"] = pid
    state.save(layout)

    def probe() -> tuple[bool, str]:
        if not layout.socket.exists():
            return False, "no socket yet"
        try:
            _ctr(layout, "version")
        except NodeError as e:
            return False, str(e)
        return True, ""

    _wait(layout, "containerd", pid, probe, 30)
    # The sandbox image cannot be pulled here: import it (and it is never garbage-collected,
    # the kubelet's image GC is off).
    archive = layout.root / "pause.tar"
    try:
        ociimages.export_archive(layout.images, "pause", archive, SANDBOX_IMAGE)
    except ociimages.ImageError as e:
        raise NodeError(f"cannot export the pause image: {e}") from e
    _ctr(layout, "images", "import", str(archive))


# --- kubelet and scheduler --------------------------------------------------------------------


def _node(layout: NodeLayout) -> dict | None:  # type: ignore[type-arg]
    out = _kubectl(layout, "get", "node", NODE_NAME, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def _node_ready(layout: NodeLayout) -> tuple[bool, str]:
    try:
        node = _node(layout)
    except (NodeError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if node is None:
        return False, "the Node is not registered yet"
    for c in node.get("status", {}).get("conditions", []):
        if c["type"] == "Ready":
            return c["status"] == "True", f"Ready={c['status']} {c.get('message', '')}"
    return False, "no Ready condition yet"


def _start_kubelet(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    kubelet_root = layout.root / "kubelet"
    kubelet_root.mkdir(parents=True, exist_ok=True)
    (layout.root / "pod-logs").mkdir(parents=True, exist_ok=True)
    state.ports.update(kubelet=processes.free_port(), kubelet_healthz=processes.free_port())
    config = layout.root / "kubelet-config.yaml"
    _render(
        "kubelet-config.yaml",
        config,
        root=str(layout.root),
        run=str(layout.run),
        node_ip=state.node_ip,
        kubelet_port=str(state.ports["kubelet"]),
        healthz_port=str(state.ports["kubelet_healthz"]),
        ca=str(layout.cluster.pki.ca_crt),
        resolv_conf="/etc/resolv.conf",
    )
    # The apiserver reaches the kubelet (logs, exec) as kube-apiserver-kubelet-client; the
    # kubelet's webhook authorization asks RBAC, so bind it as kubeadm does.
    _kubectl_apply(
        layout,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "cijob-testground:apiserver-kubelet"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:kubelet-api-admin",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "kube-apiserver-kubelet-client",
                }
            ],
        },
    )
    argv = [
        str(layout.cluster.binary("kubelet")),
        f"--config={config}",
        f"--kubeconfig={layout.kubelet_kubeconfig}",
        f"--root-dir={kubelet_root}",
        f"--cert-dir={layout.pki.dir / 'kubelet-serving'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={state.node_ip}",
        "--node-labels=cijob.dev/real-node=true",
        "--v=1",
    ]
    echo(f"realnode: starting kubelet {NODE_NAME} ({state.node_ip}:{state.ports['kubelet']})")
    pid = processes.start(argv, layout.cluster.log("kubelet"))
    state.pids["kubelet"] = pid
    state.save(layout)
    _wait(layout, "kubelet", pid, lambda: _node_ready(layout), READY_TIMEOUT)
    # The kubelet registers with node.kubernetes.io/not-ready, which the node-lifecycle
    # controller lifts once the node is Ready; the test ground does not run that controller
    # (for the simulator's sake), so lift it here.
    _kubectl(
        layout, "taint", "node", NODE_NAME, "node.kubernetes.io/not-ready:NoSchedule-", check=False
    )


def _start_scheduler(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    port = processes.free_port()
    state.ports["kube-scheduler"] = port
    kc = layout.scheduler_kubeconfig
    argv = [
        str(layout.cluster.binary("kube-scheduler")),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",
        "--v=0",
    ]
    echo(f"realnode: starting kube-scheduler on 127.0.0.1:{port}")
    pid = processes.start(argv, layout.cluster.log("kube-scheduler"))
    state.pids["kube-scheduler"] = pid
    state.save(layout)
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def probe() -> tuple[bool, str]:
        code, body = cluster._get(f"https://127.0.0.1:{port}/healthz", insecure)
        return code == 200, f"{code} {body[-200:]}"

    _wait(layout, "kube-scheduler", pid, probe, 60)


# --- up, down, status -------------------------------------------------------------------------


def healthy(state: NodeState, layout: NodeLayout) -> bool:
    if not state.ready:
        return False
    for name in DAEMONS:
        pid = state.pids.get(name)
        if pid is None or not processes.alive(pid, name, _marker(layout)):
            return False
    return _node_ready(layout)[0]


def status(root: Path | None = None) -> NodeState | None:
    """The running node's state, or None when it is not up and Ready."""
    layout = NodeLayout(cluster.Layout(root or cluster.default_root()))
    state = NodeState.load(layout)
    if state is not None and healthy(state, layout):
        return state
    return None


def up(root: Path | None = None, echo: Echo = print) -> tuple[NodeState, bool]:
    """Starts the real node (the control plane must be up); returns (state, started now)."""
    cl = cluster.Layout(root or cluster.default_root())
    layout = NodeLayout(cl)
    control = cluster.status(cl.root)
    if control is None:
        raise NodeError("the test ground is not up: run `python -m testground up` first")
    missing = requirements(layout)
    if missing:
        raise NodeError("this machine cannot run the real node; missing: " + "; ".join(missing))
    with _locked(layout):
        old = NodeState.load(layout)
        if old is not None:
            if healthy(old, layout):
                echo(f"realnode: already up ({NODE_NAME}, registry {old.registry})")
                return old, False
            echo("realnode: cleaning up a node that is no longer healthy")
            _teardown(layout, old, echo)
        password = secrets.token_urlsafe(12)
        state = NodeState(
            node_name=NODE_NAME,
            node_ip=node_ip(),
            registry=f"127.0.0.1:{REGISTRY_PORT}",
            registry_user=REGISTRY_USER,
            registry_password=password,
            socket=str(layout.socket),
        )
        began = time.monotonic()
        try:
            _certs(layout, control.server)
            _start_registry(layout, state, echo)
            _images(layout, state, echo)
            _api_relay(layout, state, echo)
            t = time.monotonic()
            _start_containerd(layout, state, echo)
            _start_kubelet(layout, state, echo)
            state.timings["node_ready"] = round(time.monotonic() - t, 1)
            _start_scheduler(layout, state, echo)
        except BaseException:
            _teardown(layout, state, echo)
            raise
        state.ready = True
        state.timings["total"] = round(time.monotonic() - began, 1)
        state.save(layout)
        echo(
            f"realnode: {NODE_NAME} Ready in {state.timings['total']} s "
            f"(kubelet+containerd {state.timings['node_ready']} s); registry {state.registry} "
            f"user {state.registry_user}; state in {layout.state_file}"
        )
        return state, True


def open_to_all(root: Path | None = None, echo: Echo = print) -> None:
    """Lifts the node's taint, for a person's cluster (`make cluster-up NODE=real`) where no
    kubelet simulator runs: any pod, the examples' too, is then scheduled onto the real node."""
    layout = NodeLayout(cluster.Layout(root or cluster.default_root()))
    _kubectl(layout, "taint", "node", NODE_NAME, f"{TAINT_KEY}:NoSchedule-", check=False)
    echo(f"realnode: taint {TAINT_KEY} lifted: every pod may run on {NODE_NAME}")


def _shims(layout: NodeLayout) -> list[int]:
    """Pids of containerd-shim-runc-v2 processes serving our containerd."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].endswith(b"containerd-shim-runc-v2")
            and any(str(layout.socket).encode() in a for a in argv)
        ):
            pids.append(int(entry.name))
    return pids


def _unmount_under(path: Path) -> None:
    """Unmounts whatever the kubelet and containerd left mounted under `path`, deepest first."""
    prefix = str(path.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _drain(layout: NodeLayout, echo: Echo, timeout: float = 30.0) -> None:
    # Pods on the node are deleted while the kubelet still runs, so it stops their
    # containers and tears their network down; then nothing is left to clean up by hand.
    try:
        out = _kubectl(
            layout,
            "get",
            "pods",
            "-A",
            f"--field-selector=spec.nodeName={NODE_NAME}",
            "-o",
            "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
            check=False,
        )
    except subprocess.TimeoutExpired:
        return
    pods = [p.split("/", 1) for p in out.split()]
    for ns, name in pods:
        _kubectl(
            layout, "delete", "pod", "-n", ns, name, "--grace-period=1", "--wait=false", check=False
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not _ctr(layout, "tasks", "ls", "-q", check=False).split():
                return
        except subprocess.TimeoutExpired:
            return
        time.sleep(0.5)
    echo("realnode: containers still running after the drain; killing them")


def _teardown(layout: NodeLayout, state: NodeState, echo: Echo) -> None:
    marker = _marker(layout)
    alive = {n: p for n, p in state.pids.items() if processes.alive(p, n, marker)}
    if "kubelet" in alive and "containerd" in alive and cluster.status(layout.cluster.root):
        _drain(layout, echo)
    for name in ("kube-scheduler", "kubelet"):
        if name in alive:
            echo(f"realnode: stopping {name} (pid {alive[name]})")
            processes.stop(alive[name], name, marker)
    if "containerd" in alive:
        for task in _ctr(layout, "tasks", "ls", "-q", check=False).split():
            _ctr(layout, "tasks", "kill", "--signal=SIGKILL", task, check=False)
        echo(f"realnode: stopping containerd (pid {alive['containerd']})")
        processes.stop(alive["containerd"], "containerd", marker)
    for pid in _shims(layout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _unmount_under(layout.root)
    if "socat" in alive:
        processes.stop(alive["socat"], "socat", marker)
    if "docker-registry" in alive:
        echo(f"realnode: stopping docker-registry (pid {alive['docker-registry']})")
        processes.stop(alive["docker-registry"], "docker-registry", marker)
    if cluster.status(layout.cluster.root):
        with contextlib.suppress(NodeError, subprocess.TimeoutExpired):
            _kubectl(layout, "delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false")
    for link in (BRIDGE, API_LINK):
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
    # Throwaway runtime state: a fresh containerd, kubelet and IPAM next time (the images and
    # the registry's data are rebuilt by up()).
    for d in ("run", "kubelet", "cni/ipam", "containerd/root", "pod-logs"):
        shutil.rmtree(layout.root / d, ignore_errors=True)
    layout.state_file.unlink(missing_ok=True)


def down(root: Path | None = None, echo: Echo = print) -> bool:
    """Stops what up() started and removes the Node; returns whether anything ran."""
    layout = NodeLayout(cluster.Layout(root or cluster.default_root()))
    with _locked(layout):
        state = NodeState.load(layout)
        if state is None:
            echo("realnode: not running")
            return False
        _teardown(layout, state, echo)
        echo("realnode: down")
        return True


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m testground.realnode", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "check"))
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(args.root)
        elif args.command == "down":
            down(args.root)
        elif args.command == "check":
            missing = requirements()
            print("realnode: missing " + "; ".join(missing) if missing else "realnode: ok")
            return 1 if missing else 0
        else:
            state = status(args.root)
            if state is None:
                print("realnode: not running")
                return 1
            print(json.dumps(asdict(state), indent=2))
    except (NodeError, cluster.ClusterError) as e:
        print(f"realnode: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
