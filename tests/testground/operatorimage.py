"""The operator image, built from the repository's Dockerfile with Debian's buildah (no Docker
daemon), on a local Python 3.11 base made from Debian's packages; both cached under ~/.cache.

    built = ensure()                          # builds only when an input changed
    digest = push(built, "127.0.0.1:5555", "user", "password")

The Dockerfile's base (`PYTHON_IMAGE`, python:3.11-slim-bookworm) cannot be pulled here, so
`base()` makes its equivalent: Debian 12 with Python 3.11 (`python`, `pip`, `venv`),
ca-certificates and apt, by mmdebstrap from this machine's Debian sources, packed as an OCI
layout with umoci as the other test images are (ociimages.py). buildah builds the Dockerfile
with `--build-arg PYTHON_IMAGE=oci:<that layout>` in storage of its own (removed after each
build), reaching pip's index and Debian's archive as this machine does (host network, this
machine's CA bundle mounted into the RUN steps only). The result is an OCI layout in
`~/.cache/cijob-testground/images/cijob-operator-<key>`, the key a hash of every input (the
Dockerfile, its build context as .dockerignore lets it through, the base's key), so a warm run
only pushes it. Needs the Debian packages buildah, mmdebstrap, umoci and skopeo.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from testground import ociimages

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
# What the base holds: the official python image's Debian release, its Python, and what the
# Dockerfile runs (pip, venv, apt-get, groupadd/useradd from minbase's passwd).
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
BASE_TAG = "python-3.11-slim-bookworm"
# The base's name in buildah's storage: the build argument PYTHON_IMAGE.
BASE_NAME = "localhost/cijob/python:3.11-slim-bookworm"
# Bump when the base's recipe changes in a way its inputs below do not show.
BASE_RECIPE = "3"
# What Debian's own container images (and so the python images built on them) configure: apt
# keeps no package caches or downloaded .debs, dpkg installs no manuals, docs or translations.
BASE_FILES = {
    "etc/apt/apt.conf.d/docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/apt/apt.conf.d/docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "etc/apt/apt.conf.d/docker-autoremove-suggests": (
        'Apt::AutoRemove::SuggestsImportant "false";\n'
    ),
}
# Like the slim image: no manuals, docs (copyrights kept) or translations, now and for what
# the Dockerfile installs later (BASE_FILES).
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
# This machine's Debian sources: the base's apt-get (the Dockerfile's CREDENTIAL_HELPERS and
# git) reaches the archive as this machine's does.
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
# pip and apt inside the build trust what this machine trusts (it may reach the index through
# a proxy with a CA of its own); mounted into the RUN steps only, never into the image.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
NAME = "cijob-operator"
TAG = "0.1.0"
REPOSITORY = f"{ociimages.REPOSITORY}/{NAME}"
# overlay works on this machine's ext4 as root; vfs (a full copy per layer) is the fallback
# that works everywhere.
DRIVER = os.environ.get("CIJOB_BUILDAH_DRIVER", "overlay")
PROGRESS_EVERY = 30.0
# Images (and bases) kept in the cache, the most recently used first: each is ~110 MB (~70 MB).
KEEP = 4
# buildah's storage is kept between builds (`--layers`: a step whose inputs did not change comes
# from it); past this size it is emptied, and the next build starts from the base again. A
# change of the operator's code adds a few MB to it, one of requirements.lock ~350 MB.
STORAGE_LIMIT = 3 * 10**9

Echo = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A tool is missing or a build step failed; the message has its output or log."""


@dataclass(frozen=True)
class Built:
    """The operator image in the cache: an OCI layout holding tag `tag`."""

    layout: Path
    tag: str
    key: str
    digest: str  # manifest digest in the layout
    compressed_bytes: int
    uncompressed_bytes: int
    build_seconds: float  # of the build that made it (the base's included when it was made)
    base_seconds: float
    user: str
    cached: bool  # found in the cache by this call

    @property
    def oci(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


def cache_root() -> Path:
    env = os.environ.get("CIJOB_TESTGROUND_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "cijob-testground"
    return root / "images"


def requirements() -> list[str]:
    """What this machine lacks to build the image (empty: it can try)."""
    missing = [
        f"{cmd} (apt-get install {cmd})"
        for cmd in ("buildah", "mmdebstrap", "umoci", "skopeo")
        if shutil.which(cmd) is None
    ]
    if os.geteuid() != 0:
        missing.append("root (buildah's RUN steps and mmdebstrap's chroot need it here)")
    if _apt_sources() is None:
        missing.append(f"Debian apt sources ({' or '.join(map(str, APT_SOURCES))})")
    return missing


def _apt_sources() -> Path | None:
    return next((p for p in APT_SOURCES if p.is_file()), None)


def _run(*argv: str, log: Path | None = None, cwd: Path | None = None) -> str:
    if shutil.which(argv[0]) is None:
        raise ImageBuildError(f"the '{argv[0]}' command is missing (apt-get install {argv[0]})")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-3000:]}"
        )
    return proc.stdout


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


# --- inputs -----------------------------------------------------------------------------------


def _context_roots() -> list[str]:
    """The paths .dockerignore lets through (it is an allowlist: `*`, then `!path` lines)."""
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    return [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]


def _ignored(rel: Path) -> bool:
    # What .dockerignore excludes below the allowed paths: byte code and egg-info. Counting a
    # file too many only costs a rebuild; missing one would reuse a stale image.
    return any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts) or (
        rel.suffix == ".pyc"
    )


def context_files() -> Iterator[Path]:
    """The build context's files, relative to the repository, sorted."""
    found: list[Path] = []
    for root in _context_roots():
        path = REPO / root
        if path.is_file():
            found.append(Path(root))
        elif path.is_dir():
            for f in path.rglob("*"):
                rel = f.relative_to(REPO)
                if f.is_file() and not _ignored(rel):
                    found.append(rel)
    yield from sorted(found)


def base_key() -> str:
    sources = _apt_sources()
    return _digest(
        BASE_RECIPE.encode(),
        BASE_SUITE.encode(),
        " ".join(BASE_PACKAGES).encode(),
        " ".join(DPKG_OPTIONS).encode(),
        " ".join(BASE_ENV).encode(),
        json.dumps(BASE_FILES, sort_keys=True).encode(),
        sources.read_bytes() if sources else b"",
    )


def image_key(build_args: dict[str, str] | None = None) -> str:
    parts = [base_key().encode(), DOCKERFILE.read_bytes(), DOCKERIGNORE.read_bytes()]
    parts += [json.dumps(sorted((build_args or {}).items())).encode()]
    for rel in context_files():
        parts += [str(rel).encode(), (REPO / rel).read_bytes()]
    return _digest(*parts)


# --- the base ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build of a key at a time: checkouts of one machine share the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prune(cache: Path, prefix: str, keep: int = KEEP) -> None:
    """Removes all but the `keep` most recently used layouts named `prefix<key>`."""
    found = [d for d in cache.glob(f"{prefix}*") if (d / "index.json").exists()]
    found.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for old in found[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        for suffix in (".log", ".lock"):
            old.with_name(old.name + suffix).unlink(missing_ok=True)


def _used(layout: Path) -> Path:
    os.utime(layout)  # what _prune keeps
    return layout


def base(echo: Echo = print) -> tuple[Path, float]:
    """The base image's OCI layout (tag BASE_TAG), made if missing; and seconds spent on it."""
    cache = cache_root()
    final = cache / f"python-base-{base_key()}"
    with _locked(final.with_name(final.name + ".lock")):
        if (final / "index.json").exists():
            return _used(final), 0.0
        made = _make_base(final, echo)
    _prune(cache, "python-base-")
    return made


def _make_base(final: Path, echo: Echo) -> tuple[Path, float]:
    cache = final.parent
    sources = _apt_sources()
    if sources is None:
        raise ImageBuildError(f"no Debian apt sources at {' or '.join(map(str, APT_SOURCES))}")
    began = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="python-base-", dir=cache))
    log = final.with_name(final.name + ".log")
    log.unlink(missing_ok=True)
    layout = tmp / "layout"
    try:
        _run("umoci", "init", "--layout", str(layout), log=log)
        _run("umoci", "new", "--image", f"{layout}:new", log=log)
        bundle = tmp / "bundle"
        _run("umoci", "unpack", "--image", f"{layout}:new", str(bundle), log=log)
        echo(
            f"operatorimage: making the Python 3.11 base ({BASE_SUITE}: "
            f"{', '.join(BASE_PACKAGES)}) with mmdebstrap"
        )
        argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
        argv += [f"--dpkgopt={o}" for o in DPKG_OPTIONS]
        argv += ["--skip=output/dev", BASE_SUITE, str(bundle / "rootfs"), str(sources)]
        _logged(argv, log, echo, "mmdebstrap")
        rootfs = bundle / "rootfs"
        # The official image's pip installs into its Python; Debian's marks it
        # externally managed (PEP 668), which would refuse the Dockerfile's `pip install`.
        (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        for cache in (rootfs / "var/cache/apt").glob("*.bin"):
            cache.unlink()
        files = {
            **BASE_FILES,
            "etc/dpkg/dpkg.cfg.d/docker": "".join(o + "\n" for o in DPKG_OPTIONS),
        }
        for rel, text in files.items():
            (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
            (rootfs / rel).write_text(text)
        _run("umoci", "repack", "--image", f"{layout}:new", str(bundle), log=log)
        config = ["--config.workingdir=/", "--clear=config.env"]
        config += [f"--config.env={e}" for e in BASE_ENV]
        config += ["--clear=config.cmd", "--config.cmd=python3"]
        _run(
            "umoci", "config", "--image", f"{layout}:new", "--tag", BASE_TAG,
            "--os=linux", "--architecture=amd64", *config, log=log,
        )  # fmt: skip
        _run("umoci", "rm", "--image", f"{layout}:new", log=log)
        _run("umoci", "gc", "--layout", str(layout), log=log)
        layout.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = round(time.monotonic() - began, 1)
    echo(f"operatorimage: base {final.name} made in {seconds} s (log {log})")
    return final, seconds


def _logged(argv: list[str], log: Path, echo: Echo, what: str) -> None:
    """Runs a long command into `log`, saying every 30 s that it still runs."""
    if shutil.which(argv[0]) is None:
        raise ImageBuildError(f"the '{argv[0]}' command is missing (apt-get install {argv[0]})")
    began = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        next_note = began + PROGRESS_EVERY
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() > next_note:
                next_note += PROGRESS_EVERY
                echo(f"operatorimage: {what} still running ({time.monotonic() - began:.0f} s)")
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
        raise ImageBuildError(f"{what} exited {proc.returncode}; log {log}:\n{tail}")


# --- the operator image -----------------------------------------------------------------------


def _sizes(layout: Path, digest: str) -> tuple[int, int, str]:
    """(compressed, uncompressed) bytes of the image's layers, and its configured user."""
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / digest.split(":", 1)[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":", 1)[1]).read_text())
    compressed = uncompressed = 0
    for layer in manifest["layers"]:
        compressed += int(layer["size"])
        path = blobs / layer["digest"].split(":", 1)[1]
        opener = gzip.open if "gzip" in layer["mediaType"] else open
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 20):
                uncompressed += len(chunk)
    return compressed, uncompressed, str(config.get("config", {}).get("User", ""))


def _meta(final: Path) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads((final / "cijob-build.json").read_text())
        return data
    except (OSError, ValueError):
        return None


def _built(final: Path, meta: dict[str, object], cached: bool) -> Built:
    return Built(
        layout=final,
        tag=TAG,
        key=str(meta["key"]),
        digest=str(meta["digest"]),
        compressed_bytes=int(str(meta["compressed_bytes"])),
        uncompressed_bytes=int(str(meta["uncompressed_bytes"])),
        build_seconds=float(str(meta["build_seconds"])),
        base_seconds=float(str(meta["base_seconds"])),
        user=str(meta["user"]),
        cached=cached,
    )


def _unmount_under(path: Path) -> None:
    prefix = str(path.resolve()) + "/"
    points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def ensure(echo: Echo = print, build_args: dict[str, str] | None = None) -> Built:
    """The operator image of this checkout, from the cache or built now."""
    missing = requirements()
    if missing:
        raise ImageBuildError("cannot build the operator image; missing: " + "; ".join(missing))
    key = image_key(build_args)
    cache = cache_root()
    final = cache / f"{NAME}-{key}"
    with _locked(final.with_name(final.name + ".lock")):
        meta = _meta(final)
        if meta is not None and (final / "index.json").exists():
            echo(f"operatorimage: {final.name} from the cache")
            return _built(_used(final), meta, cached=True)
        built = _build(key, final, echo, build_args)
    _prune(cache, f"{NAME}-")
    return built


def _storage_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _empty_storage(storage: list[str], store: Path) -> None:
    subprocess.run([*storage, "rmi", "--all", "--force"], capture_output=True, check=False)
    _unmount_under(store)
    shutil.rmtree(store, ignore_errors=True)


def _build(key: str, final: Path, echo: Echo, build_args: dict[str, str] | None) -> Built:
    cache = final.parent
    cache.mkdir(parents=True, exist_ok=True)
    # One build at a time uses the kept storage, whichever checkout asks.
    with _locked(cache / "buildah.lock"):
        return _build_in_storage(key, final, echo, build_args)


def _build_in_storage(
    key: str, final: Path, echo: Echo, build_args: dict[str, str] | None
) -> Built:
    cache = final.parent
    began = time.monotonic()
    base_layout, base_seconds = base(echo)
    store = cache / f"buildah-{DRIVER}"
    work = Path(tempfile.mkdtemp(prefix=f"{NAME}-build-", dir=cache))
    log = cache / f"{NAME}-{key}.log"
    log.unlink(missing_ok=True)
    storage = ["buildah", f"--root={store / 'root'}", f"--runroot={store / 'run'}"]
    storage.append(f"--storage-driver={DRIVER}")
    local = f"localhost/{NAME}:{key}"
    argv = [*storage, "bud", "--layers", "--network=host", "--pull-never"]
    if HOST_CA.is_file():
        argv += ["--volume", f"{HOST_CA}:/etc/ssl/certs/ca-certificates.crt:ro"]
    argv += ["--build-arg", f"PYTHON_IMAGE={BASE_NAME}"]
    for k, v in sorted((build_args or {}).items()):
        argv += ["--build-arg", f"{k}={v}"]
    argv += ["--file", str(DOCKERFILE), "--tag", local, str(REPO)]
    echo(f"operatorimage: buildah bud of {DOCKERFILE.name} ({DRIVER} storage), log {log}")
    layout = work / "layout"
    # Into the build's storage under a plain name: buildah names an `oci:` FROM after its path,
    # which is no valid reference when a directory starts with a dot (~/.cache).
    into = f"containers-storage:[{DRIVER}@{store / 'root'}+{store / 'run'}]{BASE_NAME}"
    try:
        _run("skopeo", "copy", "--insecure-policy", f"oci:{base_layout}:{BASE_TAG}", into, log=log)
        _logged(argv, log, echo, "buildah bud")
        _run(*storage, "push", local, f"oci:{layout}:{TAG}", log=log)
        digest = ociimages.layout_digest(layout, TAG)
        compressed, uncompressed, user = _sizes(layout, digest)
        seconds = round(time.monotonic() - began, 1)
        meta = {
            "key": key,
            "digest": digest,
            "compressed_bytes": compressed,
            "uncompressed_bytes": uncompressed,
            "build_seconds": seconds,
            "base_seconds": base_seconds,
            "user": user,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (layout / "cijob-build.json").write_text(json.dumps(meta, indent=2) + "\n")
        if image_key(build_args) != key:
            # A file of the context changed while buildah read it: the image may hold either
            # version, so it must not be found under either key.
            raise ImageBuildError("the build context changed during the build; build again")
        shutil.rmtree(final, ignore_errors=True)
        layout.rename(final)
    finally:
        # The image stays too: removing it would remove the layers it builds on, the cache.
        shutil.rmtree(work, ignore_errors=True)
        if _storage_bytes(store) > STORAGE_LIMIT:
            _empty_storage(storage, store)
    built = _built(final, meta, cached=False)
    echo(
        f"operatorimage: built {final.name} in {built.build_seconds} s (base "
        f"{base_seconds} s): {compressed / 1e6:.1f} MB compressed, "
        f"{uncompressed / 1e6:.1f} MB uncompressed, user {user}"
    )
    return built


def reference(registry: str, built: Built) -> str:
    """Where push() puts the image: one tag per build key, so a rebuilt image never hides."""
    return f"{registry}/{REPOSITORY}:{TAG}-{built.key}"


def push(built: Built, registry: str, user: str, password: str) -> str:
    """Pushes the image to the (plain HTTP) registry; returns the manifest digest there."""
    with tempfile.TemporaryDirectory(prefix="push-") as tmp:
        digest_file = Path(tmp) / "digest"
        _run(
            "skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false",
            f"--dest-creds={user}:{password}", f"--digestfile={digest_file}",
            built.oci, f"docker://{reference(registry, built)}",
        )  # fmt: skip
        return digest_file.read_text().strip()


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="build (or find in the cache) the operator image")
    parser.add_argument("--push", default=None, help="registry host:port")
    parser.add_argument("--user", default=os.environ.get("REGISTRY_USER", ""))
    parser.add_argument("--password", default=os.environ.get("REGISTRY_PASSWORD", ""))
    args = parser.parse_args()
    try:
        built = ensure()
        print(json.dumps({"layout": str(built.layout), **(_meta(built.layout) or {})}, indent=2))
        if args.push:
            ref = reference(args.push, built)
            print(f"pushed {ref}@{push(built, args.push, args.user, args.password)}")
    except ImageBuildError as e:
        print(f"operatorimage: {e}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
