"""The real node's `helper` image: Debian 12 with git, a shell, ssh and lighttpd, made by
mmdebstrap from this machine's Debian sources and cached under ~/.cache like the operator's base.

    layout = ensure()          # OCI layout with tag `helper`, built only when its recipe changed

It is the clone container's image in the real-node tests (`helperImage`), the image a person
can try jobs with by hand (`git`, `git daemon`), and the local git server's image: lighttpd runs
`git http-backend` behind basic authentication (testground.gitserver). Needs the Debian
packages mmdebstrap and umoci, and root.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from testground import operatorimage as oi

NAME = "helper"
SUITE = "bookworm"
PACKAGES = ("git", "ca-certificates", "openssh-client", "lighttpd")
# Bump when the recipe changes in a way the inputs of key() do not show.
RECIPE = "1"
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")


def key() -> str:
    sources = oi._apt_sources()
    return oi._digest(
        RECIPE.encode(),
        SUITE.encode(),
        " ".join(PACKAGES).encode(),
        " ".join(oi.DPKG_OPTIONS).encode(),
        sources.read_bytes() if sources else b"",
    )


def requirements() -> list[str]:
    return [m for m in oi.requirements() if not m.startswith(("buildah", "skopeo"))]


def ensure(echo: oi.Echo = print) -> Path:
    """The image's OCI layout (tag `helper`), from the cache or made now."""
    missing = requirements()
    if missing:
        raise oi.ImageBuildError("cannot build the helper image; missing: " + "; ".join(missing))
    cache = oi.cache_root()
    final = cache / f"{NAME}-{key()}"
    with oi._locked(final.with_name(final.name + ".lock")):
        if (final / "index.json").exists():
            return oi._used(final)
        _make(final, echo)
    oi._prune(cache, f"{NAME}-", keep=2)
    return final


def _make(final: Path, echo: oi.Echo) -> None:
    sources = oi._apt_sources()
    if sources is None:
        raise oi.ImageBuildError("no Debian apt sources")
    began = time.monotonic()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{NAME}-", dir=final.parent))
    log = final.with_name(final.name + ".log")
    log.unlink(missing_ok=True)
    layout = tmp / "layout"
    try:
        oi._run("umoci", "init", "--layout", str(layout), log=log)
        oi._run("umoci", "new", "--image", f"{layout}:new", log=log)
        bundle = tmp / "bundle"
        oi._run("umoci", "unpack", "--image", f"{layout}:new", str(bundle), log=log)
        echo(f"helperimage: making the helper image ({SUITE}: {', '.join(PACKAGES)})")
        argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        argv += [f"--dpkgopt={o}" for o in oi.DPKG_OPTIONS]
        argv += ["--skip=output/dev", SUITE, str(bundle / "rootfs"), str(sources)]
        oi._logged(argv, log, echo, "mmdebstrap")
        rootfs = bundle / "rootfs"
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        (rootfs / "builds").mkdir(exist_ok=True)
        oi._run("umoci", "repack", "--image", f"{layout}:new", str(bundle), log=log)
        config = ["--config.workingdir=/", "--clear=config.env"]
        config += [f"--config.env={e}" for e in ENV]
        config += ["--clear=config.cmd", "--config.cmd=sh"]
        oi._run(
            "umoci", "config", "--image", f"{layout}:new", "--tag", NAME,
            "--os=linux", "--architecture=amd64", *config, log=log,
        )  # fmt: skip
        oi._run("umoci", "rm", "--image", f"{layout}:new", log=log)
        oi._run("umoci", "gc", "--layout", str(layout), log=log)
        layout.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    echo(f"helperimage: {final.name} made in {time.monotonic() - began:.1f} s (log {log})")


if __name__ == "__main__":
    print(ensure())
