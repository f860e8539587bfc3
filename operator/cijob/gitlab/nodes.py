"""YAML values that remember where they were written: maps, sequences and `!reference` tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cijob.gitlab.errors import Pos


class Map(dict[str, Any]):
    """A mapping with its own position and the line of each key."""

    def __init__(self, pos: Pos | None = None) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[str, Pos] = {}

    def at(self, key: str) -> Pos | None:
        """Where `key` was written, else where this map was."""
        return self.key_pos.get(key, self.pos)

    def put(self, key: str, value: Any, pos: Pos | None) -> None:
        self[key] = value
        if pos is not None:
            self.key_pos[key] = pos

    def copy_without(self, *keys: str) -> Map:
        out = Map(self.pos)
        for k, v in self.items():
            if k not in keys:
                out.put(k, v, self.key_pos.get(k))
        return out


class Seq(list[Any]):
    """A sequence with its own position and the line of each item."""

    def __init__(self, pos: Pos | None = None, items: list[Any] | None = None) -> None:
        super().__init__(items or [])
        self.pos = pos
        self.item_pos: list[Pos | None] = [pos] * len(self)


@dataclass(frozen=True)
class Reference:
    """`!reference [job, key, ...]`: resolved after `extends`, as GitLab does."""

    path: tuple[str, ...]
    pos: Pos

    def __str__(self) -> str:
        return "!reference [" + ", ".join(self.path) + "]"


def deep_merge(base: Any, over: Any) -> Any:
    """GitLab's (Rails') deep_merge: maps merged key by key, anything else replaced by `over`."""
    if not (isinstance(base, Map) and isinstance(over, Map)):
        return over
    out = Map(over.pos or base.pos)
    for k, v in base.items():
        out.put(k, v, base.key_pos.get(k))
    for k, v in over.items():
        out.put(k, deep_merge(out[k], v) if k in out else v, over.key_pos.get(k))
    return out


def pos_of(value: Any) -> Pos | None:
    """The position a value carries itself (maps, sequences, references), if any."""
    if isinstance(value, Map | Seq):
        return value.pos
    if isinstance(value, Reference):
        return value.pos
    return None
