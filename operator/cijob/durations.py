"""Job timeouts: `1h`, `30m`, `1h30m`, `90s` to seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"\s*([0-9]+)\s*(h|m|s)\s*")
_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in `text`; ValueError when it is not a sum of `<n>h`, `<n>m`, `<n>s`."""
    pos, total = 0, 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"invalid duration {text!r}: use forms like 1h, 30m, 1h30m, 90s")
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise ValueError("empty duration")
    return total
