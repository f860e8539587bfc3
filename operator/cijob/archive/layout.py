"""Where an attempt's container log goes in the store, and how a stored log is cut."""

from __future__ import annotations

from typing import Any

LOG_SUFFIX = ".log"


def object_key(namespace: str, job: str, uid: str, attempt: int, container: str) -> str:
    """`<namespace>/<job>/<uid>/<attempt>/<container>.log`: the namespace first, so a bucket
    lifecycle rule can keep one team's logs longer; the uid, so a job re-created under the
    same name never overwrites its predecessor's logs."""
    return f"{namespace}/{job}/{uid}/{attempt}/{container}{LOG_SUFFIX}"


def object_url(base: str, key: str) -> str:
    """The URL of `key` under the store's `base` URL (`s3://bucket/prefix`, `file:///dir`)."""
    return f"{base.rstrip('/')}/{key}"


def marker(max_bytes: int) -> bytes:
    return (
        f"\n[cijob: log truncated: the archive keeps the first {max_bytes} bytes "
        "(logArchive.maxBytes); the container wrote more, see kubectl logs while the pod "
        "exists]\n"
    ).encode()


def cap(data: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """The log as stored: at most `max_bytes`, and when longer, cut after its last whole line
    that fits, with a marker line saying so. `data` may hold one byte more than `max_bytes`
    (a read limited to max_bytes + 1 tells a log that is exactly max_bytes from a longer
    one)."""
    if len(data) <= max_bytes:
        return data, False
    mark = marker(max_bytes)
    head = data[: max(0, max_bytes - len(mark))]
    cut = head.rfind(b"\n")
    # A log of one enormous line is cut mid-line rather than dropped whole.
    head = head[: cut + 1] if cut >= 0 else head
    if head.endswith(b"\n") or not head:
        mark = mark[1:]  # the marker starts a line of its own either way
    return head + mark, True


def entry(container: str, url: str, size: int, truncated: bool) -> dict[str, Any]:
    """One `status.logs[]` item (cijob.api.status.ArchivedLog)."""
    return {"container": container, "url": url, "bytes": size, "truncated": truncated}
