"""The `cijob` command (also `kubectl cijob`): convert `.gitlab-ci.yml`, render a job's pod
without a cluster, run a job and follow it, wait for it, read its log, write the CRD."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cijob.api import crd as crd_api
from cijob.cli import convert, jobs, render


def _crd(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in crd_api.manifests().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


def parser(prog: str = "cijob") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    crd = sub.add_parser("crd", help="write the CRD and its admission policy")
    crd.add_argument("--output", default="crds", help="directory to write (default: crds)")
    crd.set_defaults(func=_crd)
    convert.add(sub)
    render.add(sub)
    jobs.add(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


def kubectl_main(argv: list[str] | None = None) -> int:
    """`kubectl-cijob`: kubectl runs it for `kubectl cijob ...`."""
    args = parser("kubectl cijob").parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
