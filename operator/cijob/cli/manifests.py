"""CiJob manifests read from a file (or stdin) for `render` and `run`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from cijob import api

Manifest = dict[str, Any]


class ManifestError(Exception):
    """A file that holds no usable CiJob."""


def read_cijobs(path: str) -> list[Manifest]:
    """The CiJob documents of `path` (`-` is stdin); other kinds are skipped by the caller."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: {exc.strerror or exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not YAML: {exc}") from None
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == api.KIND]
    if not jobs:
        raise ManifestError(f"{path}: no {api.KIND} in it")
    for j in jobs:
        if j.get("apiVersion") != api.API_VERSION:
            raise ManifestError(f"{path}: apiVersion must be {api.API_VERSION}")
        if not isinstance(j.get("metadata"), dict) or not j["metadata"].get("name"):
            raise ManifestError(f"{path}: a {api.KIND} needs metadata.name")
    return jobs


def other_kinds(path: str) -> list[str]:
    """`Kind/name` of the documents that are not CiJobs (a Secret beside a job, say)."""
    text = Path(path).read_text()
    out = []
    for d in yaml.safe_load_all(text):
        if isinstance(d, dict) and d.get("kind") not in (None, api.KIND):
            out.append(f"{d['kind']}/{(d.get('metadata') or {}).get('name', '?')}")
    return out
