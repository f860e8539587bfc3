"""`python -m chaos` (`make chaos`): the full chaos run; prints its figures, exits 1 on any
violation."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from chaos import plan, run

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    p.add_argument("--small", action="store_true", help="the small run of `make test`")
    p.add_argument("--seed", type=int, default=None, help="default: from the clock")
    p.add_argument("--keep", action="store_true", help="leave the chaos test ground up")
    p.add_argument("--workdir", type=Path, default=ROOT / ".cluster" / "chaos-runs")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    workdir = args.workdir / f"seed-{seed}"
    size = plan.SMALL if args.small else plan.FULL
    result = run.run(size, seed, workdir, keep=args.keep, echo=lambda s: print(s, flush=True))
    text = run.report(result)
    (workdir / "report.txt").write_text(
        text + "\n" + "\n".join(v for c in result.checks for v in c.violations) + "\n"
    )
    print(text, flush=True)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
