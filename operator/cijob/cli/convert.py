"""`cijob convert .gitlab-ci.yml [JOB...] [--strict]`: CiJob manifests on stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from cijob.gitlab.convert import Result, convert
from cijob.gitlab.errors import ConvertError

STDIN_NAME = ".gitlab-ci.yml"


def add(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="turn the jobs of a .gitlab-ci.yml into CiJob manifests (for kubectl apply -f -)",
    )
    p.add_argument("file", help="the GitLab CI file, e.g. .gitlab-ci.yml (- for stdin)")
    p.add_argument("jobs", nargs="*", metavar="JOB", help="jobs to convert (default: all)")
    p.add_argument(
        "--strict", action="store_true", help="fail on anything the CiJobs do not carry out"
    )
    p.set_defaults(func=run)


def converted(
    file: str, jobs: list[str], strict: bool, checkout: dict[str, Any] | None = None
) -> Result | None:
    """The conversion, its warnings (or errors, when strict) printed on stderr; None on error."""
    try:
        if file == "-":
            # stdin stands for a .gitlab-ci.yml in the current directory (for its includes)
            text = sys.stdin.read()
            result = convert(
                Path.cwd() / STDIN_NAME, jobs or None, name="<stdin>", text=text,
                checkout=checkout,
            )  # fmt: skip
        else:
            result = convert(Path(file), jobs or None, name=file, checkout=checkout)
    except ConvertError as exc:
        print(f"cijob: {exc}", file=sys.stderr)
        return None
    for w in result.warnings:
        text = str(w).replace(": warning: ", ": error: ", 1) if strict else str(w)
        print(f"cijob: {text}", file=sys.stderr)
    if strict and result.warnings:
        print(f"cijob: {len(result.warnings)} error(s) under --strict", file=sys.stderr)
        return None
    return result


def dump(manifests: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True)


def run(args: argparse.Namespace) -> int:
    result = converted(args.file, args.jobs, args.strict)
    if result is None:
        return 1
    sys.stdout.write(dump(result.manifests))
    return 0
