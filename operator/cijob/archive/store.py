"""The object store behind the archive, through obstore (docs/logs.md says why): one API for
a directory and an S3 bucket, async, one wheel without dependencies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import obstore
from obstore.store import LocalStore, ObjectStore, S3Store

from cijob.archive.settings import LogArchive

# Keys of the credentials Secret, as the AWS SDKs name the environment variables.
ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN = "AWS_SESSION_TOKEN"
CONTENT_TYPE = "text/plain; charset=utf-8"
# One request may take this long; the archiver's own retries (with backoff and an Event)
# handle a store that is down, so the client retries little by itself.
REQUEST_TIMEOUT = "60s"
CONNECT_TIMEOUT = "5s"
CLIENT_RETRIES = 1


class CredentialsError(Exception):
    """The credentials Secret is missing or lacks a key; the message names no value."""


def credentials(data: Mapping[str, str] | None, secret: str) -> dict[str, str]:
    """obstore's S3 keys from the Secret's data."""
    if data is None:
        raise CredentialsError(f"Secret {secret} (logArchive.s3.credentialsSecret) not found")
    lacking = [k for k in (ACCESS_KEY, SECRET_KEY) if not data.get(k)]
    if lacking:
        raise CredentialsError(f"Secret {secret} has no {' or '.join(lacking)}")
    out = {"access_key_id": data[ACCESS_KEY], "secret_access_key": data[SECRET_KEY]}
    if data.get(SESSION_TOKEN):
        out["session_token"] = data[SESSION_TOKEN]
    return out


def _virtual_host(endpoint: str, bucket: str) -> str:
    """`https://s3.example.com` -> `https://bucket.s3.example.com`, as obstore wants the
    endpoint of a virtual-hosted-style bucket."""
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=f"{bucket}.{parts.netloc}"))


def s3_options(settings: LogArchive, creds: Mapping[str, str]) -> dict[str, Any]:
    """The S3Store arguments for `settings` (pure, for tests): bucket, prefix, config."""
    parts = urlsplit(settings.url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    s3 = settings.s3
    config: dict[str, Any] = {"virtual_hosted_style_request": not s3.pathStyle, **creds}
    if s3.region:
        config["region"] = s3.region
    if s3.endpoint:
        config["endpoint"] = s3.endpoint if s3.pathStyle else _virtual_host(s3.endpoint, bucket)
    return {
        "bucket": bucket,
        "prefix": prefix or None,
        "config": config,
        "client_options": {
            "allow_http": bool(s3.endpoint and s3.endpoint.startswith("http://")),
            "timeout": REQUEST_TIMEOUT,
            "connect_timeout": CONNECT_TIMEOUT,
        },
        "retry_config": {"max_retries": CLIENT_RETRIES, "retry_timeout": timedelta(seconds=30)},
    }


def open_store(settings: LogArchive, creds: Mapping[str, str]) -> ObjectStore:
    """The store at `settings.url`; a directory is made if it is not there."""
    parts = urlsplit(settings.url)
    if parts.scheme == "file":
        return LocalStore(prefix=Path(parts.path), mkdir=True)
    return S3Store(**s3_options(settings, creds))


async def put(store: ObjectStore, key: str, data: bytes) -> None:
    # A directory stores no attributes (obstore refuses them there).
    attributes = None if isinstance(store, LocalStore) else {"Content-Type": CONTENT_TYPE}
    await obstore.put_async(store, key, data, attributes=attributes)


async def get(store: ObjectStore, key: str) -> bytes:
    result = await obstore.get_async(store, key)
    return bytes(await result.bytes_async())
