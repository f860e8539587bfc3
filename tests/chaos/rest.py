"""A small synchronous JSON client for the driver: one request, retried while the control
plane restarts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from testground.kubeapi import Endpoint

Json = dict[str, Any]
T = TypeVar("T")
TRANSIENT = (0, 429, 500, 502, 503, 504)
TIMEOUT = 15.0


class RestError(RuntimeError):
    def __init__(self, what: str, code: int, message: str) -> None:
        super().__init__(f"{what}: {code} {message}")
        self.code = code


class Rest:
    """Plain-JSON requests to one apiserver."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def request(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()
    ) -> tuple[int, Json]:
        """(status, body); raises RestError unless 2xx or in `ok` (status 0: no answer)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.endpoint.headers, "Content-Type": "application/json"}
        req = urllib.request.Request(
            self.endpoint.server + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, context=self.endpoint.ssl, timeout=TIMEOUT) as r:
                code, text = int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            code, text = int(e.code), e.read().decode(errors="replace")
        except (OSError, urllib.error.URLError) as e:
            raise RestError(f"{method} {path}", 0, str(e)) from e
        if code >= 300 and code not in ok:
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise RestError(f"{method} {path}", code, str(message))
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = {}
        return code, parsed if isinstance(parsed, dict) else {}


def retrying(what: str, call: Callable[[], T], patience: float) -> T:
    """`call()`, again while the control plane is away (bounded by `patience` seconds)."""
    give_up = time.monotonic() + patience
    delay = 0.2
    while True:
        try:
            return call()
        except RestError as e:
            if e.code not in TRANSIENT or time.monotonic() + delay > give_up:
                raise RuntimeError(f"chaos: {what}: {e}") from e
        time.sleep(delay)
        delay = min(2 * delay, 2.0)
