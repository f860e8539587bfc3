"""Command line: `python -m testground up|down|status|kubesim`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from testground import cluster, realnode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testground", description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="state directory (default: this checkout's .cluster)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start etcd, kube-apiserver and kube-controller-manager")
    up.add_argument(
        "--node",
        choices=("none", "real"),
        default="none",
        help="real: also start a real node (kubelet, containerd, registry; docs/real-node.md)",
    )
    sub.add_parser("down", help="stop what `up` started (and the real node, if any)")
    sub.add_parser("status", help="exit 0 if the control plane is up and healthy")
    sim = sub.add_parser("kubesim", help="run the simulated kubelet until interrupted")
    sim.add_argument("--kubeconfig", default=None, help="default: .cluster/kubeconfig if up")
    sim.add_argument(
        "--selector",
        action="append",
        default=None,
        help="label selector of the pods to run (repeatable; default: cijob.dev/job)",
    )
    sim.add_argument("--node-name", default=None)
    sim.add_argument("--exit-code", type=int, default=0, help="default exit code of a pod")
    sim.add_argument("--run-seconds", type=float, default=0.0, help="default run time of a pod")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            cluster.up(args.root)
            if args.node == "real":
                realnode.up(args.root)
                # no simulator here to keep off the node: a person's jobs run on it as they are
                realnode.open_to_all(args.root)
        elif args.command == "down":
            realnode.down(args.root, echo=lambda line: None)
            cluster.down(args.root)
        elif args.command == "status":
            state = cluster.status(args.root)
            if state is None:
                print("testground: not running")
                return 1
            print(f"testground: up at {state.server} (KUBECONFIG={state.kubeconfig})")
        elif args.command == "kubesim":
            return _kubesim(args)
    except (cluster.ClusterError, realnode.NodeError) as e:
        print(f"testground: {e}", file=sys.stderr)
        return 1
    return 0


def _kubesim(args: argparse.Namespace) -> int:
    from testground.kubesim import DEFAULT_SELECTORS, NODE_NAME, KubeSim, run_forever
    from testground.plans import Behaviour

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        state = cluster.status(args.root)
        if state is None:
            print("testground: no --kubeconfig and the test ground is not up", file=sys.stderr)
            return 1
        kubeconfig = state.kubeconfig
    sim = KubeSim(
        kubeconfig,
        selectors=args.selector or DEFAULT_SELECTORS,
        node_name=args.node_name or NODE_NAME,
        default=Behaviour(exit_code=args.exit_code, run_seconds=args.run_seconds),
        record=False,
    )
    run_forever(sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
