"""The startup probe of a service sidecar, and the port it knocks on (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cijob.errors import InvalidSpec

# GitLab's service variable naming the port to wait for.
HEALTHCHECK_TCP_PORT = "HEALTHCHECK_TCP_PORT"
# The kubelet probes once a second, so the build starts within a second of the service.
PERIOD_SECONDS = 1


def healthcheck_port(field: str, value: str | None) -> int | None:
    """HEALTHCHECK_TCP_PORT as a port number; InvalidSpec names the field when it is none."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InvalidSpec(f"{field}: {HEALTHCHECK_TCP_PORT} {value!r} is not a TCP port (1..65535)")
    return int(text)


def probe_port(healthcheck: int | None, exposed: Sequence[int] | None) -> int | None:
    """The port to wait for: HEALTHCHECK_TCP_PORT, else the image's lowest exposed TCP port
    (a probe has one port; a service listening on another names it in HEALTHCHECK_TCP_PORT)."""
    if healthcheck is not None:
        return healthcheck
    return min(exposed) if exposed else None


def startup_probe(port: int, wait_seconds: int) -> dict[str, Any]:
    """A tcpSocket startup probe the kubelet gives up on after `wait_seconds`: until it
    succeeds, the kubelet starts no later init container and not the build."""
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": PERIOD_SECONDS,
        "timeoutSeconds": 1,
        "failureThreshold": max(1, -(-wait_seconds // PERIOD_SECONDS)),
    }


def exposed_tcp_ports(image_config: Mapping[str, Any]) -> list[int]:
    """The TCP ports an image config (`config.ExposedPorts`, "5432/tcp") exposes, sorted."""
    exposed = (image_config.get("config") or {}).get("ExposedPorts") or {}
    ports = set()
    for key in exposed:
        number, _, proto = str(key).partition("/")
        if number.isdigit() and (proto or "tcp") == "tcp" and 1 <= int(number) <= 65535:
            ports.add(int(number))
    return sorted(ports)
