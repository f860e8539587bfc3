"""An S3-compatible server on loopback for the log archive's tests: SeaweedFS (`weed mini`,
built from Go modules by tests/cluster/build.sh), with an identity and a bucket of its own."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import obstore
from obstore.store import S3Store

from testground import processes
from testground.cluster import default_root

BUCKET = "cijob-logs"
READY_TIMEOUT = 90.0


class S3Error(Exception):
    """The server could not be started; the message says why (and where its log is)."""


@dataclass
class S3Server:
    """A running SeaweedFS: its S3 endpoint, bucket and the credentials of its one identity."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen[bytes]
    log: Path

    def env(self) -> dict[str, str]:
        """A user's S3 environment for this server (what `cijob logs` reads s3:// with)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def binary() -> Path:
    return default_root() / "bin" / "weed"


def start(directory: Path, bucket: str = BUCKET) -> S3Server:
    """Starts `weed mini` with its data in `directory`, on free ports of 127.0.0.1, S3 only
    (no WebDAV, admin UI, Iceberg or Lance endpoints, no telemetry)."""
    weed = binary()
    if not weed.exists():
        raise S3Error(f"{weed} is missing: run `make testground` (tests/cluster/build.sh)")
    directory.mkdir(parents=True, exist_ok=True)
    access, secret = "cijob" + secrets.token_hex(6), secrets.token_urlsafe(24)
    config = directory / "s3.json"
    identity = {
        "name": "cijob-archive",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    ports = {name: processes.free_port() for name in (
        "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc",
    )}  # fmt: skip
    data = directory / "data"
    data.mkdir(exist_ok=True)
    argv = [
        str(weed), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.config={config}", f"-bucket={bucket}",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
        f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
        "-master.telemetry=false",
    ]  # fmt: skip
    log = directory / "weed.log"
    out = log.open("ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", bucket, access, secret, proc, log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise S3Error(f"weed mini exited {proc.returncode}; see {log}: {_tail(log)}")
        if _bucket_ready(server):
            return server
        time.sleep(0.5)
    server.stop()
    raise S3Error(f"weed mini did not serve bucket {bucket} in {READY_TIMEOUT:.0f} s: {_tail(log)}")


def store(server: S3Server) -> S3Store:
    """A client of the bucket, as the server's own identity."""
    return S3Store(
        server.bucket,
        endpoint=server.endpoint,
        region="us-east-1",
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        client_options={"allow_http": True, "timeout": "10s"},
        retry_config={"max_retries": 0},
    )


def _bucket_ready(server: S3Server) -> bool:
    """Whether the bucket takes a signed write (the gateway is up, the identity and the
    bucket are made)."""
    try:
        obstore.put(store(server), ".ready", b"")
    except Exception:
        return False
    return True


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
