"""GitLab's human `timeout:` (`1h 30m`, `3 hours 20 minutes`, `90 min`) in the CiJob's syntax."""

from __future__ import annotations

import re

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)")
_FILLER = re.compile(r"(,|\band\b|\s)+")


def parse_gitlab_duration(text: str) -> int:
    """Seconds in `text` as GitLab (ChronicDuration) reads it; a bare number is seconds.

    ValueError names what it could not read.
    """
    rest = text.strip().lower()
    if not rest:
        raise ValueError("empty duration")
    total, pos = 0.0, 0
    while pos < len(rest):
        filler = _FILLER.match(rest, pos)
        if filler:
            pos = filler.end()
            continue
        m = _PART.match(rest, pos)
        if not m or (m.group(2) and m.group(2) not in _UNITS):
            raise ValueError(f"cannot read {text!r} as a duration (use forms like 1h 30m)")
        total += float(m.group(1)) * _UNITS[m.group(2) or "s"]
        pos = m.end()
    return round(total)


def cijob_duration(seconds: int) -> str:
    """`5400` -> `1h30m`: the CiJob's `<n>h<n>m<n>s` form, shortest first."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out or "0s"
