"""`cijob logs` of an attempt whose pod is gone: read from the operator's log archive, with
the user's own S3 credentials (the AWS_* environment) or from a directory this machine sees."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import obstore
from obstore.store import S3Store

from cijob.cli.follow import Fail

Json = Mapping[str, Any]
ENVIRONMENT = "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL"


def attempt_logs(status: Json, attempt: int) -> list[Json] | None:
    """The archived logs the status records for `attempt`; None when it records none."""
    if status.get("attempt") == attempt and status.get("logs") is not None:
        return list(status["logs"])
    for record in status.get("attempts") or []:
        if record.get("attempt") == attempt and record.get("logs") is not None:
            return list(record["logs"])
    return None


def locate(status: Json, attempt: int, container: str, pod: str) -> str:
    """The URL of the container's archived log, or a Fail saying why there is none."""
    logs = attempt_logs(status, attempt)
    if logs is None:
        ended = status.get("phase") in ("Succeeded", "Failed", "Canceled") or any(
            r.get("attempt") == attempt for r in status.get("attempts") or []
        )
        why = (
            "the operator has recorded no archive of it (it keeps none unless logArchive is "
            "configured, docs/logs.md, or it has not finished archiving yet)"
            if ended
            else "the attempt has not ended"
        )
        raise Fail(f"pod {pod} no longer exists, and {why}: the log of attempt {attempt} is gone")
    for item in logs:
        if item.get("container") == container:
            return str(item["url"])
    kept = ", ".join(str(i.get("container")) for i in logs) or "nothing"
    raise Fail(
        f"pod {pod} no longer exists, and the archive of attempt {attempt} holds no log of "
        f"container {container} (it holds: {kept})"
    )


def _s3_store(bucket: str, env: Mapping[str, str]) -> S3Store:
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT") or ""
    return S3Store(
        bucket,
        client_options={"allow_http": endpoint.startswith("http://"), "timeout": "60s"},
        retry_config={"max_retries": 2},
    )


def read(url: str, env: Mapping[str, str] | None = None) -> bytes:
    """The archived object at `url`: s3:// with the user's AWS_* environment, file:// when
    this machine sees the operator's directory."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        try:
            return path.read_bytes()
        except OSError as exc:
            raise Fail(
                f"the log was archived to {url}, which this machine cannot read "
                f"({exc.strerror}): the directory is the operator's volume; read it there"
            ) from None
    if parts.scheme == "s3":
        try:
            result = obstore.get(_s3_store(parts.netloc, env), unquote(parts.path.lstrip("/")))
            return bytes(result.bytes())
        except Exception as exc:
            raise Fail(
                f"cannot read the archived log {url}: {exc}; cijob reads the archive with "
                f"your own S3 credentials and endpoint ({ENVIRONMENT})"
            ) from None
    raise Fail(f"the log was archived to {url}, a kind of URL cijob cannot read")
