"""What the converter reports: positions in the YAML, warnings and the one error that stops it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """A place in a file: its path as the user named it and a line counted from 1."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Warning_:
    """Something of the file that the CiJob does not carry out, with where it was written."""

    pos: Pos | None
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: warning: {self.message}" if self.pos else f"warning: {self.message}"


class ConvertError(Exception):
    """Bad input: one message naming the file and line; the command exits non-zero."""

    def __init__(self, pos: Pos | None, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message

    def __str__(self) -> str:
        return f"{self.pos}: error: {self.message}" if self.pos else f"error: {self.message}"
