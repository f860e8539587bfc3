"""A git server on the real node: git's own `git http-backend` behind lighttpd with basic
authentication, in a pod of the `helper` image (testground.helperimage), serving bare
repositories that the tests make on this machine (a hostPath under `.cluster/node/git`).

    server = ensure(layout, state)        # idempotent: the pod, Running, and its address
    repo = server.make_repo("app", {"run.sh": "echo hi"}, private=False)
    repo.url                              # http://<pod IP>:8080/git/app.git

`/git/<name>.git` serves `repos/public` to anyone; `/private/<name>.git` serves
`repos/private` only with the server's user and password (lighttpd's mod_auth, plain file).
Traffic stays between the node's pods (the job's clone container reaches the pod IP).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from testground import realnode

NAMESPACE = "cijob-git"
POD = "git-server"
PORT = 8080
USER = "ci"
ROOT_IN_POD = "/srv/git"
# lighttpd serves http-backend as CGI: anonymous under /git, basic auth under /private.
LIGHTTPD_CONF = f"""\
server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi",
                  "mod_accesslog")
server.document-root = "{ROOT_IN_POD}"
server.port = {PORT}
server.errorlog = "/dev/stderr"
accesslog.filename = "/dev/stderr"
auth.backend = "plain"
auth.backend.plain.userfile = "/run/git-server/users"
$HTTP["url"] =~ "^/git/" {{
  alias.url = ("/git/" => "/usr/lib/git-core/git-http-backend/")
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{ROOT_IN_POD}/public",
                            "GIT_HTTP_EXPORT_ALL" => "1")
}}
$HTTP["url"] =~ "^/private/" {{
  alias.url = ("/private/" => "/usr/lib/git-core/git-http-backend/")
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{ROOT_IN_POD}/private",
                            "GIT_HTTP_EXPORT_ALL" => "1")
  auth.require = ("" => ("method" => "basic", "realm" => "cijob git", "require" => "valid-user"))
}}
"""
START = f"""\
set -e
mkdir -p /run/git-server
printf '%s:%s\\n' "$GIT_USER" "$(cat /run/secrets/git/password)" > /run/git-server/users
cat > /run/git-server/lighttpd.conf <<'EOF'
{LIGHTTPD_CONF}EOF
git config --global --add safe.directory '*'
exec lighttpd -D -f /run/git-server/lighttpd.conf
"""
COMMITTER = {
    "GIT_AUTHOR_NAME": "cijob tests",
    "GIT_AUTHOR_EMAIL": "tests@cijob.dev",
    "GIT_COMMITTER_NAME": "cijob tests",
    "GIT_COMMITTER_EMAIL": "tests@cijob.dev",
}


class GitServerError(RuntimeError):
    """The git server pod did not come up; the message says what its pod or log showed."""


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **COMMITTER, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(Path.home())}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise GitServerError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


@dataclass(frozen=True)
class Repo:
    """A bare repository on the server, and the working copy that made it."""

    name: str
    url: str
    bare: Path
    work: Path

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Commits `files` (path -> text) on the checked-out branch, pushes; returns the sha."""
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if path.endswith(".sh"):
                target.chmod(0o755)
        _git("add", "-A", cwd=self.work)
        _git("commit", "-q", "-m", message, cwd=self.work)
        self.push()
        return self.rev_parse("HEAD")

    def push(self) -> None:
        """Every branch and tag of the working copy, to the server."""
        _git("push", "-q", "--all", "origin", cwd=self.work)
        _git("push", "-q", "--tags", "origin", cwd=self.work)

    def rev_parse(self, rev: str) -> str:
        """The server's own answer: `git rev-parse` in the bare repository (after a push)."""
        return _git("rev-parse", f"{rev}^{{commit}}", cwd=self.bare)

    def run(self, *args: str) -> str:
        """A git command in the working copy (branch, tag, submodule add, push)."""
        return _git(*args, cwd=self.work)


@dataclass
class GitServer:
    """The running server: its address (the pod IP), user and password, repositories' root."""

    ip: str
    password: str
    root: str

    @property
    def user(self) -> str:
        return USER

    def base(self, private: bool = False) -> str:
        return f"http://{self.ip}:{PORT}/{'private' if private else 'git'}"

    def make_repo(self, name: str, files: dict[str, str], private: bool = False) -> Repo:
        """A new bare repository `name` with one commit of `files` on branch main."""
        kind = "private" if private else "public"
        bare = Path(self.root) / kind / f"{name}.git"
        work = Path(self.root) / "work" / kind / name
        for d in (bare, work):
            if d.exists():
                subprocess.run(["rm", "-rf", str(d)], check=True)
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", "-b", "main", str(bare))
        _git("init", "-q", "-b", "main", str(work))
        _git("remote", "add", "origin", str(bare), cwd=work)
        repo = Repo(name, f"{self.base(private)}/{name}.git", bare, work)
        repo.commit(files, "initial commit")
        return repo


def _layout_dir(layout: realnode.NodeLayout) -> Path:
    return layout.root / "git"


def _pod(state: realnode.NodeState, root: Path) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE, "labels": {"app": POD}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": realnode.NODE_NAME},
            "tolerations": [
                {"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
            ],
            "imagePullSecrets": [{"name": "registry"}],
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "lighttpd",
                    "image": state.image("helper"),
                    "command": ["sh", "-c", START],
                    "env": [{"name": "GIT_USER", "value": USER}],
                    "ports": [{"containerPort": PORT}],
                    "volumeMounts": [
                        {"name": "repos", "mountPath": ROOT_IN_POD},
                        {"name": "password", "mountPath": "/run/secrets/git", "readOnly": True},
                    ],
                    "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
                }
            ],
            "volumes": [
                {"name": "repos", "hostPath": {"path": str(root), "type": "Directory"}},
                {"name": "password", "secret": {"secretName": "git-server"}},
            ],
        },
    }


def ensure(
    layout: realnode.NodeLayout, state: realnode.NodeState, timeout: float = 90.0
) -> GitServer:
    """The git server pod on the real node (made if missing) once it is Ready."""
    root = _layout_dir(layout) / "repos"
    for kind in ("public", "private", "work"):
        (root / kind).mkdir(parents=True, exist_ok=True)
    saved = _layout_dir(layout) / "state.json"
    try:
        password = json.loads(saved.read_text())["password"]
    except (OSError, ValueError, KeyError):
        password = secrets.token_urlsafe(16)
        saved.write_text(json.dumps({"password": password}) + "\n")
    k = realnode._kubectl
    k(layout, "create", "namespace", NAMESPACE, check=False)
    auth = state.docker_auth_config()
    realnode._kubectl_apply(
        layout,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "registry", "namespace": NAMESPACE},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": auth},
        },
    )
    realnode._kubectl_apply(
        layout,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "git-server", "namespace": NAMESPACE},
            "stringData": {"password": password},
        },
    )
    pod = _pod(state, root)
    current = k(layout, "get", "pod", "-n", NAMESPACE, POD, "-o", "json", "--ignore-not-found")
    if current.strip():
        body = json.loads(current)
        if body["spec"]["containers"][0]["image"] != state.image("helper") or (
            body.get("status", {}).get("phase") not in ("Pending", "Running")
        ):
            k(layout, "delete", "pod", "-n", NAMESPACE, POD, "--grace-period=1", "--wait=true")
            current = ""
    if not current.strip():
        realnode._kubectl_apply(layout, pod)
    deadline = time.monotonic() + timeout
    last: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        out = k(layout, "get", "pod", "-n", NAMESPACE, POD, "-o", "json", "--ignore-not-found")
        last = json.loads(out) if out.strip() else {}
        status = last.get("status", {})
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )
        if ready and status.get("podIP"):
            return GitServer(ip=status["podIP"], password=password, root=str(root))
        time.sleep(0.5)
    logs = k(layout, "logs", "-n", NAMESPACE, POD, "--tail=30", check=False)
    raise GitServerError(
        f"the git server pod is not Ready after {timeout:.0f} s: "
        f"{json.dumps(last.get('status', {}))[:2000]}\n{logs}"
    )


def to_dict(server: GitServer) -> dict[str, str]:
    return {**asdict(server), "user": USER}
