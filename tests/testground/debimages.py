"""Test images made of Debian's own packages (PostgreSQL and its client), cached under ~/.cache.

    layout, _ = ensure(POSTGRES)             # an OCI layout with the tags postgres and psql
    digest = push(layout, "postgres", "127.0.0.1:5555", "user", "password")

Each image is a Debian 12 minbase with a few packages, made by mmdebstrap from this machine's
Debian sources and packed with umoci, as the operator image's base is (operatorimage.py). The
layout is kept in `~/.cache/cijob-testground/images/debian-<name>-<key>`, the key a hash of
the recipe and the apt sources, so a warm run only pushes. Needs mmdebstrap, umoci and skopeo.
The build image with psql is the same root filesystem under another config (`variants`):
Debian's postgresql depends on its client, and one mmdebstrap run is half the cold time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from testground import ociimages, operatorimage
from testground.operatorimage import DPKG_OPTIONS, Echo, ImageBuildError, _digest

SUITE = "bookworm"
# Bump when a recipe changes in a way its fields below do not show.
RECIPE = "1"
PG_BIN = "/usr/lib/postgresql/15/bin"

# The official postgres image's interface, in small: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD; and POSTGRES_START_DELAY (seconds before initdb), so
# a test can make the database slow to start.
POSTGRES_ENTRYPOINT = f"""#!/bin/sh
set -e
if [ "$1" != postgres ]; then exec "$@"; fi
shift
PGDATA=${{PGDATA:-/var/lib/postgresql/data}}
user=${{POSTGRES_USER:-postgres}}
if [ -n "$POSTGRES_START_DELAY" ]; then
  echo "postgres: starting in $POSTGRES_START_DELAY s (POSTGRES_START_DELAY)"
  sleep "$POSTGRES_START_DELAY"
fi
as_postgres() {{ setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
  method=${{POSTGRES_HOST_AUTH_METHOD:-trust}}
  set --
  if [ -n "$POSTGRES_PASSWORD" ]; then
    printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pgpass && chown postgres /tmp/pgpass
    set -- --pwfile=/tmp/pgpass
    method=${{POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}}
  fi
  as_postgres {PG_BIN}/initdb -D "$PGDATA" -U "$user" --auth-local=trust \\
    --auth-host="$method" "$@" >/dev/null
  rm -f /tmp/pgpass
  echo "host all all all $method" >> "$PGDATA/pg_hba.conf"
  db=${{POSTGRES_DB:-$user}}
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \\"$db\\"" | as_postgres {PG_BIN}/postgres --single -D "$PGDATA" \\
      postgres >/dev/null
  fi
  echo "postgres: database $db initialised for user $user"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups {PG_BIN}/postgres -D "$PGDATA" \\
  -c listen_addresses='*' -c unix_socket_directories=/tmp
"""
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")


@dataclass(frozen=True)
class DebImage:
    """One image: Debian packages, files written into it, and its config."""

    name: str
    packages: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # path -> executable script
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    about: str = ""
    # More tags of the same root: tag -> (entrypoint, cmd), with no exposed ports.
    variants: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)


POSTGRES = DebImage(
    "postgres",
    ("postgresql",),
    files={"usr/local/bin/docker-entrypoint.sh": POSTGRES_ENTRYPOINT},
    entrypoint=("docker-entrypoint.sh",),
    cmd=("postgres",),
    exposed_ports=("5432/tcp",),
    about="Debian's PostgreSQL 15 server, EXPOSE 5432, the official image's variables; "
    "tag psql: the same files as a build image (bash, psql)",
    variants={"psql": ((), ("bash",))},
)
IMAGES = (POSTGRES,)


def key(image: DebImage) -> str:
    sources = operatorimage._apt_sources()
    recipe = [image.packages, image.files, image.entrypoint, image.cmd, image.exposed_ports]
    recipe += [ENV, image.variants]
    return _digest(
        RECIPE.encode(),
        SUITE.encode(),
        json.dumps(recipe).encode(),
        " ".join(DPKG_OPTIONS).encode(),
        sources.read_bytes() if sources else b"",
    )


def ensure(image: DebImage, echo: Echo = print) -> tuple[Path, float]:
    """The image's OCI layout (tag `image.name`), made if missing; and seconds spent on it."""
    missing = [c for c in ("mmdebstrap", "umoci", "skopeo") if shutil.which(c) is None]
    if missing:
        raise ImageBuildError(f"cannot build {image.name}: missing {', '.join(missing)}")
    cache = operatorimage.cache_root()
    final = cache / f"debian-{image.name}-{key(image)}"
    with operatorimage._locked(final.with_name(final.name + ".lock")):
        if (final / "index.json").exists():
            return operatorimage._used(final), 0.0
        made = _make(image, final, echo)
    operatorimage._prune(cache, f"debian-{image.name}-", keep=2)
    return made


def tags(image: DebImage) -> list[str]:
    return [image.name, *image.variants]


def _make(image: DebImage, final: Path, echo: Echo) -> tuple[Path, float]:
    run = operatorimage._run
    sources = operatorimage._apt_sources()
    if sources is None:
        raise ImageBuildError("no Debian apt sources on this machine")
    began = time.monotonic()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"debian-{image.name}-", dir=final.parent))
    log = final.with_name(final.name + ".log")
    log.unlink(missing_ok=True)
    layout, bundle = tmp / "layout", tmp / "bundle"
    try:
        run("umoci", "init", "--layout", str(layout), log=log)
        run("umoci", "new", "--image", f"{layout}:new", log=log)
        run("umoci", "unpack", "--image", f"{layout}:new", str(bundle), log=log)
        echo(f"debimages: making {image.name} ({SUITE}: {', '.join(image.packages)})")
        argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(image.packages)}"]
        argv += [f"--dpkgopt={o}" for o in DPKG_OPTIONS]
        argv += ["--skip=output/dev", SUITE, str(bundle / "rootfs"), str(sources)]
        operatorimage._logged(argv, log, echo, f"mmdebstrap {image.name}")
        rootfs = bundle / "rootfs"
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        (rootfs / "builds").mkdir(exist_ok=True)
        for rel, text in image.files.items():
            (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
            (rootfs / rel).write_text(text)
            (rootfs / rel).chmod(0o755)
        run("umoci", "repack", "--image", f"{layout}:new", str(bundle), log=log)
        config = ["--config.workingdir=/", "--clear=config.env"]
        config += [f"--config.env={e}" for e in ENV]
        config += ["--clear=config.entrypoint"]
        config += [f"--config.entrypoint={a}" for a in image.entrypoint]
        config += ["--clear=config.cmd", *[f"--config.cmd={a}" for a in image.cmd]]
        config += [f"--config.exposedports={p}" for p in image.exposed_ports]
        run(
            "umoci", "config", "--image", f"{layout}:new", "--tag", image.name,
            "--os=linux", "--architecture=amd64", *config, log=log,
        )  # fmt: skip
        for tag, (entrypoint, cmd) in image.variants.items():
            variant = ["--clear=config.entrypoint"]
            variant += [f"--config.entrypoint={a}" for a in entrypoint]
            variant += ["--clear=config.cmd", *[f"--config.cmd={a}" for a in cmd]]
            variant += ["--clear=config.exposedports"]
            run("umoci", "config", "--image", f"{layout}:{image.name}", "--tag", tag, *variant,
                log=log)  # fmt: skip
        run("umoci", "rm", "--image", f"{layout}:new", log=log)
        run("umoci", "gc", "--layout", str(layout), log=log)
        shutil.rmtree(final, ignore_errors=True)
        layout.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = round(time.monotonic() - began, 1)
    echo(f"debimages: {final.name} made in {seconds} s (log {log})")
    return final, seconds


def push(layout: Path, name: str, registry: str, user: str, password: str) -> str:
    """Pushes tag `name` of `layout` as <registry>/cijob/<name>:1; returns the digest."""
    return ociimages.push(layout, name, registry, user, password)


def main() -> int:
    for image in IMAGES:
        layout, seconds = ensure(image)
        print(f"{', '.join(tags(image))}: {layout} ({seconds} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
