"""`make demo`: start a local control plane, run the operator, apply the seed's examples, watch."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "tests")]

from testground import cluster  # noqa: E402
from testground.kubesim import KubeSim  # noqa: E402
from testground.plans import Behaviour  # noqa: E402

TERMINAL = ("Succeeded", "Failed", "Canceled")
NAMESPACE = "demo"


def say(line: str) -> None:
    print(f"==> {line}", flush=True)


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> str:
    binary = ROOT / ".cluster" / "bin" / "kubectl"
    proc = subprocess.run(
        [str(binary), "--kubeconfig", kubeconfig, *args], capture_output=True, text=True
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--use-current-context",
        action="store_true",
        help="use the cluster of $KUBECONFIG instead of the embedded one",
    )
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args()

    sim: KubeSim | None = None
    if args.use_current_context:
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        say(f"using the cluster of {kubeconfig}; its nodes run the pods")
    else:
        say("starting the embedded control plane (etcd, kube-apiserver, kube-controller-manager)")
        state, _ = cluster.up(echo=lambda line: print(f"    {line}", flush=True))
        kubeconfig = str(state.kubeconfig)
        say(
            "no kubelet runs on this machine: a kubelet SIMULATOR plays the node. It writes pod "
            "statuses as a kubelet would (no container really runs; scripts 'succeed')."
        )
        # Each simulated job runs a few seconds, so the progress below is visible.
        sim = KubeSim(kubeconfig, default=Behaviour.succeeds(run_seconds=3.0)).start()

    say("installing the CRD and its admission policy from crds/")
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/cijobs.cijob.dev")
    kubectl(kubeconfig, "create", "namespace", NAMESPACE, check=False)
    # A fresh start on every run: earlier demo jobs (and, by owner references, their pods) go.
    kubectl(kubeconfig, "delete", "cijobs", "--all", "-n", NAMESPACE, "--wait=true")

    log_path = ROOT / ".cluster" / "demo-operator.log"
    log_path.parent.mkdir(exist_ok=True)
    port = free_port()
    say(f"starting cijob-operator on namespace {NAMESPACE} (log: {log_path.relative_to(ROOT)})")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    with log_path.open("w") as log:
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cijob.main",
                "--kubeconfig",
                kubeconfig,
                "--namespace",
                NAMESPACE,
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
        deadline = time.monotonic() + args.timeout
        shown = ""
        while time.monotonic() < deadline:
            state = kubectl(
                kubeconfig,
                "get",
                "cijobs",
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.phase}/{.status.reason} {end}",
            )
            if state != shown:  # print the table whenever a job moved on
                shown = state
                print(f"\n[{time.strftime('%H:%M:%S')}] kubectl get cijobs -n {NAMESPACE}")
                print(kubectl(kubeconfig, "get", "cijobs", "-n", NAMESPACE), end="", flush=True)
            phases = [item.split("=", 1)[1].split("/")[0] for item in state.split()]
            if phases and all(ph in TERMINAL for ph in phases):
                break
            if operator.poll() is not None:
                raise SystemExit(f"the operator exited; see {log_path}")
            time.sleep(0.5)
        else:
            raise SystemExit(f"the jobs did not finish in {args.timeout} s; see {log_path}")
        say("the pod the operator rendered for the seed's rspec job (kubectl get pod rspec-1)")
        print(kubectl(kubeconfig, "get", "pod", "rspec-1", "-n", NAMESPACE, "-o", "yaml"))
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
