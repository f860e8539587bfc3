"""`logArchive` of the operator's configuration: where logs go and how large one may be."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# 16 MiB, as the issue fixes it; GitLab Runner's own output_limit default is 4 MiB.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
SCHEMES = ("file", "s3")


class S3Settings(BaseModel):
    """How to reach an S3-compatible bucket (AWS, SeaweedFS, MinIO, Ceph RGW, R2, ...)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(
        default=None,
        description="The S3 endpoint URL (`https://s3.example.com`); AWS's own when unset.",
    )
    region: str | None = Field(default=None, description="The bucket's region (`us-east-1`).")
    credentialsSecret: str | None = Field(
        default=None,
        description="A Secret in the operator's namespace with AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN); unset: the operator's "
        "environment (AWS_* variables, IRSA web identity, instance metadata).",
    )
    pathStyle: bool = Field(
        default=False,
        description="Path-style requests (`endpoint/bucket/key`), as most S3-compatible "
        "servers want; false: virtual-hosted style (`bucket.endpoint/key`).",
    )


class LogArchive(BaseModel):
    """Where each ended attempt's container logs are stored (docs/logs.md)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="`file:///var/lib/cijob/logs` (a directory, e.g. on a PVC) or "
        "`s3://bucket/prefix`."
    )
    s3: S3Settings = Field(default_factory=S3Settings)
    maxBytes: int = Field(
        default=DEFAULT_MAX_BYTES,
        ge=1024,
        description="Largest object kept per container and attempt; a longer log is cut "
        "there, with a marker line.",
    )

    @field_validator("url")
    @classmethod
    def _a_store_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in SCHEMES:
            raise ValueError("must be a file:// or s3:// URL")
        if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
            raise ValueError("a file:// URL names an absolute directory: file:///path")
        if parts.scheme == "s3" and not parts.netloc:
            raise ValueError("an s3:// URL names its bucket: s3://bucket/prefix")
        if parts.query or parts.fragment:
            raise ValueError("takes no query or fragment")
        return value.rstrip("/") if parts.path not in ("", "/") else value
