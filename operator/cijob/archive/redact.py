"""Keeps secret values out of what the operator logs or posts: each is replaced by `***`."""

from __future__ import annotations

from collections.abc import Iterable

HIDDEN = "***"
# Shorter values would blank out ordinary words; real keys are 16 characters and more.
MIN_LENGTH = 6


class Redactor:
    def __init__(self) -> None:
        self.values: set[str] = set()

    def hide(self, values: Iterable[str]) -> None:
        self.values.update(v for v in values if len(v) >= MIN_LENGTH)

    def __call__(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, HIDDEN)
        return text
