"""Job timeouts: `1h`, `30m`, `1h30m`, `90s`."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cijob.api import rules
from cijob.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("1h30m", 5400),
        ("90s", 90),
        ("2h 30m", 9000),
        ("1h30m15s", 5415),
        (" 45m ", 2700),
        ("1 h", 3600),
        ("90m", 5400),
        ("10s", 10),
    ],
)
def test_valid_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "1", "h", "1x", "1d", "1H", "30M", "1.5h", "-1h", "1h30", "1h,30m", "m30", "1h-30m"],
)
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_invalid_duration_message_shows_the_forms() -> None:
    with pytest.raises(ValueError, match="1h30m"):
        parse_duration("1 day")


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=500), st.sampled_from("hms")),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["", " "]),
)
def test_sums_of_parts_agree_with_the_crd_rule(parts: list[tuple[int, str]], sep: str) -> None:
    text = sep.join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts)
    assert parse_duration(text) == expected
    # The API server's rule admits exactly what the operator parses.
    assert re.match(rules.DURATION, text)
