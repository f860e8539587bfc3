"""The `cijob` command: generate the CRD, render a job's pod without a cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cijob.api.crd import manifests


def _crd(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in manifests().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cijob", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    crd = sub.add_parser("crd", help="write the CRD and its admission policy")
    crd.add_argument("--output", default="crds", help="directory to write (default: crds)")
    crd.set_defaults(func=_crd)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
