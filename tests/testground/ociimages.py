"""Small OCI images for the real node, built without Docker from this machine's Debian files.

Each image is a root filesystem assembled from host binaries (busybox-static, bash and the
shared libraries it needs, a statically linked pause), written into an OCI layout with umoci
and pushed to the test registry with skopeo. Needs the Debian packages umoci, skopeo and
busybox-static (and gcc for the pause binary).

    images = build_all(layout_dir)               # OCI layout, one tag per image
    digests = push_all(layout_dir, "127.0.0.1:5555", "user", "password")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAUSE_SOURCE = REPO / "tests" / "cluster" / "node" / "pause.c"
BUSYBOX = Path("/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Repository of the test images in the registry: <registry>/cijob/<name>:<tag>.
REPOSITORY = "cijob"
TAG = "1"


class ImageError(RuntimeError):
    """A tool is missing or one of its commands failed; the message has its output."""


Populate = Callable[[Path], None]


@dataclass(frozen=True)
class Image:
    """One test image: its name (the OCI layout's tag), how to fill its root, its config."""

    name: str
    populate: Populate
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=lambda: [PATH_ENV])
    about: str = ""


def _run(*argv: str, cwd: Path | None = None) -> str:
    if shutil.which(argv[0]) is None:
        raise ImageError(f"the '{argv[0]}' command is missing (apt-get install {argv[0]})")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


# --- root filesystems -------------------------------------------------------------------------


def _skeleton(root: Path) -> None:
    for d in ("bin", "etc", "tmp", "root", "usr/bin", "usr/local/bin", "var/tmp", "builds"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "var/tmp").chmod(0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")


def _busybox(root: Path, skip: tuple[str, ...] = ()) -> None:
    """/bin/busybox and a symlink per applet (sh, echo, cat, wget, nc, httpd, ...)."""
    if not BUSYBOX.exists():
        raise ImageError(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    _skeleton(root)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in _run(str(BUSYBOX), "--list").split():
        link = root / "bin" / applet
        if applet in skip or applet == "busybox" or link.exists():
            continue
        link.symlink_to("busybox")


def _script(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(0o755)


def _with_libraries(root: Path, binary: Path, dest: str) -> None:
    """Copies a dynamically linked host binary and every library ldd names."""
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, target)
    for line in _run("ldd", str(binary)).splitlines():
        parts = line.split()
        candidates = [p for p in parts if p.startswith("/")]
        for lib in candidates[:1]:
            real = Path(lib)
            copy = root / lib.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(real.resolve(), copy)


def sh_root(root: Path) -> None:
    _busybox(root)


def bash_root(root: Path) -> None:
    # bash is /bin/bash and /bin/sh, so `sh -c` runs bash (and the launcher's pipefail).
    _busybox(root, skip=("sh", "ash"))
    _with_libraries(root, Path("/bin/bash"), "/bin/bash")
    (root / "bin/sh").symlink_to("bash")


def daemon_root(root: Path) -> None:
    # The seed's super/sql: ENTRYPOINT is a server that never returns and ignores its
    # arguments, so a job script given to it as CMD never runs without an override.
    _busybox(root)
    _script(
        root,
        "/usr/local/bin/super-sql-server",
        '#!/bin/sh\necho "super-sql server starting (ignoring arguments: $*)"\n'
        "exec sleep 2147483647\n",
    )
    _script(
        root,
        "/usr/local/bin/super-sql",
        '#!/bin/sh\ncase "$1" in\n  --version) echo "super-sql 0.0.1-experimental" ;;\n'
        '  *) echo "super-sql: $*" ;;\nesac\n',
    )


def wrapper_root(root: Path) -> None:
    # An ENTRYPOINT that prepares something, then runs its arguments: `exec "$@"`.
    _busybox(root)
    _script(
        root,
        "/usr/local/bin/entrypoint.sh",
        '#!/bin/sh\nset -e\necho "wrapper-entrypoint: preparing" >&2\n'
        'export WRAPPED_BY=entrypoint.sh\nexec "$@"\n',
    )


def http_root(root: Path) -> None:
    # A TCP service: busybox httpd on port 8080 serving one page.
    _busybox(root)
    www = root / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text("hello from the cijob test service\n")


def pause_root(root: Path) -> None:
    # The pod sandbox image the node's containerd uses (it cannot pull registry.k8s.io/pause).
    if shutil.which("gcc") is None:
        raise ImageError("gcc is missing (apt-get install gcc libc6-dev): needed for pause")
    _skeleton(root)
    _run("gcc", "-static", "-Os", "-s", "-o", str(root / "pause"), str(PAUSE_SOURCE))


IMAGES: tuple[Image, ...] = (
    Image("pause", pause_root, entrypoint=["/pause"], about="the pod sandbox image"),
    Image("sh", sh_root, cmd=["sh"], about="busybox-static only: sh and its applets"),
    Image("bash", bash_root, cmd=["bash"], about="Debian's bash (and its libraries), busybox"),
    Image(
        "super-sql",
        daemon_root,
        entrypoint=["/usr/local/bin/super-sql-server"],
        about="ENTRYPOINT is a daemon that ignores its arguments (the seed's super/sql)",
    ),
    Image(
        "wrapper",
        wrapper_root,
        entrypoint=["/usr/local/bin/entrypoint.sh"],
        cmd=["sh"],
        about='ENTRYPOINT is a wrapper that runs "$@"',
    ),
    Image(
        "http",
        http_root,
        entrypoint=["httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
        about="a TCP service: busybox httpd on port 8080",
    ),
)
BY_NAME = {i.name: i for i in IMAGES}


# --- OCI layout and registry ------------------------------------------------------------------


def _config_args(image: Image) -> list[str]:
    args = ["--config.workingdir=/", "--clear=config.env"]
    args += [f"--config.env={e}" for e in image.env]
    args.append("--clear=config.entrypoint")
    args += [f"--config.entrypoint={a}" for a in image.entrypoint or []]
    args.append("--clear=config.cmd")
    args += [f"--config.cmd={a}" for a in image.cmd or []]
    return args


def build(layout: Path, image: Image) -> None:
    """Builds `image` as the tag `image.name` of the OCI layout `layout` (made if missing)."""
    if not (layout / "index.json").exists():
        layout.parent.mkdir(parents=True, exist_ok=True)
        _run("umoci", "init", "--layout", str(layout))
    with tempfile.TemporaryDirectory(prefix=f"oci-{image.name}-") as tmp:
        bundle = Path(tmp) / "bundle"
        # A fresh, empty image each time: rebuilding never stacks layers.
        _run("umoci", "new", "--image", f"{layout}:{image.name}-base")
        _run("umoci", "unpack", "--image", f"{layout}:{image.name}-base", str(bundle))
        image.populate(bundle / "rootfs")
        _run(
            "umoci",
            "repack",
            "--image",
            f"{layout}:{image.name}-base",
            "--refresh-bundle",
            str(bundle),
        )
        _run(
            "umoci",
            "config",
            "--image",
            f"{layout}:{image.name}-base",
            "--tag",
            image.name,
            "--os=linux",
            "--architecture=amd64",
            *_config_args(image),
        )
        _run("umoci", "rm", "--image", f"{layout}:{image.name}-base")
    _run("umoci", "gc", "--layout", str(layout))


def build_all(layout: Path, names: list[str] | None = None) -> list[str]:
    """Builds every test image (or those named) into one OCI layout; returns their names."""
    chosen = [BY_NAME[n] for n in names] if names else list(IMAGES)
    for image in chosen:
        build(layout, image)
    return [i.name for i in chosen]


def reference(registry: str, name: str, tag: str = TAG) -> str:
    return f"{registry}/{REPOSITORY}/{name}:{tag}"


def push(layout: Path, name: str, registry: str, user: str, password: str) -> str:
    """Pushes tag `name` of the layout to the (plain HTTP) registry; returns the digest."""
    with tempfile.TemporaryDirectory(prefix="push-") as tmp:
        digest_file = Path(tmp) / "digest"
        _run(
            "skopeo",
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            f"--dest-creds={user}:{password}",
            f"--digestfile={digest_file}",
            f"oci:{layout}:{name}",
            f"docker://{reference(registry, name)}",
        )
        return digest_file.read_text().strip()


def export_archive(layout: Path, name: str, archive: Path, ref: str) -> None:
    """Writes tag `name` as a docker-archive tarball tagged `ref` (for `ctr images import`)."""
    archive.unlink(missing_ok=True)
    _run(
        "skopeo",
        "copy",
        "--insecure-policy",
        f"oci:{layout}:{name}",
        f"docker-archive:{archive}:{ref}",
    )


def push_all(
    layout: Path, registry: str, user: str, password: str, names: list[str] | None = None
) -> dict[str, str]:
    """Pushes the layout's test images; returns {reference: digest}."""
    out = {}
    for name in names or [i.name for i in IMAGES if i.name != "pause"]:
        out[reference(registry, name)] = push(layout, name, registry, user, password)
    return out


def layout_digest(layout: Path, name: str) -> str:
    """The manifest digest of tag `name` in the OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    for m in index.get("manifests", []):
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
            return str(m["digest"])
    raise ImageError(f"no tag {name!r} in {layout}")


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="build (and push) the real node's test images")
    parser.add_argument("layout", type=Path)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--push", default=None, help="registry host:port")
    parser.add_argument("--user", default=os.environ.get("REGISTRY_USER", ""))
    parser.add_argument("--password", default=os.environ.get("REGISTRY_PASSWORD", ""))
    args = parser.parse_args()
    for name in build_all(args.layout, args.names or None):
        print(f"built {name}: {layout_digest(args.layout, name)}")
    if args.push:
        for ref, digest in push_all(
            args.layout, args.push, args.user, args.password, args.names or None
        ).items():
            print(f"pushed {ref}@{digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
