"""`make demo`: start a local control plane, run the operator, apply the seed's examples, watch."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "tests")]

from cijob.api import policy  # noqa: E402
from testground import cluster, gitserver, realnode  # noqa: E402
from testground.kubesim import KubeSim  # noqa: E402
from testground.plans import Behaviour  # noqa: E402

TERMINAL = ("Succeeded", "Failed", "Canceled")
NAMESPACE = "demo"
REAL_NAMESPACE = "demo-real"
INLINE_AUTH = f"{policy.INLINE_AUTH_LABEL}={policy.INLINE_AUTH_ALLOWED}"


def say(line: str) -> None:
    print(f"==> {line}", flush=True)


def kubectl(kubeconfig: str, *args: str, check: bool = True, input: str | None = None) -> str:
    binary = ROOT / ".cluster" / "bin" / "kubectl"
    proc = subprocess.run(
        [str(binary), "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        input=input,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(operator: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the operator did not become healthy; see {log_path}")


def start_real_node(root: Path) -> realnode.NodeState | None:
    """The real node (kubelet, containerd, runc, a private registry) where this machine can
    run one; None, having said why, where it cannot."""
    missing = realnode.requirements(realnode.NodeLayout(cluster.Layout(root)))
    if missing:
        say("no REAL node on this machine (missing: " + "; ".join(missing) + ")")
        return None
    say("starting a REAL node: kubelet, containerd, runc, a CNI bridge and a private registry")
    try:
        state, _ = realnode.up(root, echo=lambda line: print(f"    {line}", flush=True))
    except realnode.NodeError as e:
        say(f"the real node did not start ({e}); see docs/real-node.md")
        return None
    return state


DEMO_REPO = {
    "test.sh": '#!/bin/sh\nset -e\nfor t in tests/*.sh; do echo "running $t"; sh "$t"; done\n'
    'echo "all tests of $CI_PROJECT_PATH at $CI_COMMIT_SHORT_SHA pass"\n',
    "tests/arithmetic.sh": "test $((6 * 7)) -eq 42\n",
    "tests/strings.sh": 'test "$(echo hello | tr a-z A-Z)" = HELLO\n',
}


def demo_repo(root: Path, node: realnode.NodeState) -> str:
    """A repository on the node's git server (a pod: git http-backend behind lighttpd)."""
    layout = realnode.NodeLayout(cluster.Layout(root))
    server = gitserver.ensure(layout, node)
    return server.make_repo("demo-app", DEMO_REPO).url


def real_jobs(node: realnode.NodeState, git_url: str | None = None) -> list[dict[str, Any]]:
    """Jobs for the real node, from the seed's cases, on the test registry's private images:
    the credentials travel as the job's DOCKER_AUTH_CONFIG variable, as in the seed. With
    `git_url`, one more clones that repository and runs its tests."""
    placement = {
        "nodeSelector": {"kubernetes.io/hostname": realnode.NODE_NAME},
        "tolerations": [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }
    auth = {"DOCKER_AUTH_CONFIG": node.docker_auth_config()}

    def job(name: str, **spec: Any) -> dict[str, Any]:
        spec["variables"] = {**auth, **spec.get("variables", {})}
        return {
            "apiVersion": "cijob.dev/v1alpha1",
            "kind": "CiJob",
            "metadata": {"name": name, "namespace": REAL_NAMESPACE},
            "spec": {**placement, **spec},
        }

    wait_web = "for i in $(seq 50); do wget -qO- http://web:8080/ && break; sleep 0.2; done"
    return [
        job(
            "hello", image=node.image("bash"), script=['echo "hello from $(hostname)"', "uname -sr"]
        ),
        job(
            "with-service",
            image=node.image("sh"),
            services=[{"name": node.image("http"), "alias": "web"}],
            script=[wait_web, "wget -qO- http://127.0.0.1-cijob-http:8080/"],
        ),
        job(
            "super-sql",
            image={"name": node.image("super-sql"), "entrypoint": [""]},
            script=["super-sql --version"],
        ),
        # The seed's first example for real: PostgreSQL from Debian's packages, slow to
        # start on purpose; the script has no wait loop: the build waits for the service.
        job(
            "rspec",
            image=node.image("psql"),
            services=[
                {
                    "name": node.image("postgres"),
                    "alias": "postgres-db",
                    "variables": {"POSTGRES_START_DELAY": "5"},
                }
            ],
            variables={
                "POSTGRES_DB": "test",
                "DATABASE_URL": "postgres://postgres@postgres-db:5432/$POSTGRES_DB",
            },
            beforeScript=["psql --version"],
            script=[
                "psql \"$DATABASE_URL\" -tAc 'select version()'",
                "psql -h 127.0.0.1-cijob-postgres -U postgres -d test -tAc 'select 40 + 2'",
            ],
        ),
        job(
            "failing",
            image=node.image("sh"),
            script=["echo working", "exit 3", "echo never printed"],
            afterScript=["echo cleaning up after the failure"],
        ),
        *(
            [
                job(
                    "clone-and-test",
                    image=node.image("helper"),
                    source={"git": {"url": git_url}},
                    script=["git log --oneline -1", "./test.sh"],
                )
            ]
            if git_url
            else []
        ),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--use-current-context",
        action="store_true",
        help="use the cluster of $KUBECONFIG instead of the embedded one",
    )
    p.add_argument(
        "--no-real-node",
        action="store_true",
        help="do not start the real node even where the machine can run one",
    )
    p.add_argument("--timeout", type=float, default=180.0)
    args = p.parse_args()

    sim: KubeSim | None = None
    node: realnode.NodeState | None = None
    if args.use_current_context:
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        say(f"using the cluster of {kubeconfig}; its nodes run the pods")
    else:
        say("starting the embedded control plane (etcd, kube-apiserver, kube-controller-manager)")
        state, _ = cluster.up(echo=lambda line: print(f"    {line}", flush=True))
        kubeconfig = str(state.kubeconfig)
        if not args.no_real_node:
            node = start_real_node(Path(state.root))
        if node is not None:
            say(
                f"the REAL node {realnode.NODE_NAME} is Ready: the jobs of namespace "
                f"{REAL_NAMESPACE} run in real containers, pulling from {node.registry}"
            )
        say(
            f"the seed's examples (namespace {NAMESPACE}) name public images this machine cannot "
            "pull: a kubelet SIMULATOR plays their node, writing pod statuses as a kubelet would "
            "(no container runs; their scripts 'succeed')."
        )
        # Each simulated job runs a few seconds, so the progress below is visible.
        sim = KubeSim(
            kubeconfig, default=Behaviour.succeeds(run_seconds=3.0), namespaces={NAMESPACE}
        ).start()
    namespaces = [NAMESPACE] + ([REAL_NAMESPACE] if node is not None else [])
    git_url = None
    if node is not None and not args.use_current_context:
        say("starting the git server on the real node, with a repository to clone (demo-app)")
        git_url = demo_repo(Path(state.root), node)

    say("installing the CRD and its admission policy from crds/")
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/cijobs.cijob.dev")
    for ns in namespaces:
        kubectl(kubeconfig, "create", "namespace", ns, check=False)
        # The real node's jobs carry DOCKER_AUTH_CONFIG inline, as the seed's: a single-tenant
        # namespace may (docs/pod-policy.md).
        kubectl(kubeconfig, "label", "--overwrite", "namespace", ns, INLINE_AUTH)
        # A fresh start on every run: earlier demo jobs (and, by owner references, their pods) go.
        kubectl(kubeconfig, "delete", "cijobs", "--all", "-n", ns, "--wait=true")

    log_path = ROOT / ".cluster" / "demo-operator.log"
    log_path.parent.mkdir(exist_ok=True)
    port = free_port()
    say(
        f"starting cijob-operator on namespaces {', '.join(namespaces)} "
        f"(log: {log_path.relative_to(ROOT)})"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    if node is not None:
        # the clone container's image: git and a shell from the node's registry
        env["CIJOB_CONFIG"] = json.dumps({"helperImage": node.image("helper")})
    with log_path.open("w") as log:
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cijob.main",
                "--kubeconfig",
                kubeconfig,
                *(arg for ns in namespaces for arg in ("--namespace", ns)),
                "--health-host",
                "127.0.0.1",
                "--health-port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_healthy(operator, port, log_path)
        say("applying the seed's examples from examples/")
        print(kubectl(kubeconfig, "apply", "-n", NAMESPACE, "-f", str(ROOT / "examples")), end="")
        if node is not None:
            say(f"applying jobs for the real node in {REAL_NAMESPACE} (private images)")
            items = real_jobs(node, git_url)
            manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
            print(kubectl(kubeconfig, "apply", "-f", "-", input=manifest), end="")
        deadline = time.monotonic() + args.timeout
        shown = ""
        while time.monotonic() < deadline:
            progress = "".join(
                kubectl(
                    kubeconfig,
                    "get",
                    "cijobs",
                    "-n",
                    ns,
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.status.phase}/{.status.reason} "
                    "{end}",
                )
                for ns in namespaces
            )
            if progress != shown:  # print the tables whenever a job moved on
                shown = progress
                for ns in namespaces:
                    print(f"\n[{time.strftime('%H:%M:%S')}] kubectl get cijobs -n {ns}")
                    print(kubectl(kubeconfig, "get", "cijobs", "-n", ns), end="", flush=True)
            phases = [item.split("=", 1)[1].split("/")[0] for item in progress.split()]
            if phases and all(ph in TERMINAL for ph in phases):
                break
            if operator.poll() is not None:
                raise SystemExit(f"the operator exited; see {log_path}")
            time.sleep(0.5)
        else:
            raise SystemExit(f"the jobs did not finish in {args.timeout} s; see {log_path}")
        say("the pod the operator rendered for the seed's rspec job (kubectl get pod rspec-1)")
        print(kubectl(kubeconfig, "get", "pod", "rspec-1", "-n", NAMESPACE, "-o", "yaml"))
        for job in real_jobs(node, git_url) if node is not None else []:
            name = job["metadata"]["name"]
            say(f"REAL node: kubectl logs {name}-1 -c build -n {REAL_NAMESPACE}")
            print(kubectl(kubeconfig, "logs", f"{name}-1", "-c", "build", "-n", REAL_NAMESPACE))
        say(
            "done. Explore with: export KUBECONFIG="
            + kubeconfig
            + "; .cluster/bin/kubectl get cijobs -A. Stop everything with: make cluster-down"
        )
        return 0
    finally:
        operator.terminate()
        operator.wait(15)
        if sim is not None:
            sim.stop()


if __name__ == "__main__":
    sys.exit(main())
