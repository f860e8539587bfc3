"""`extends` and `!reference`, in GitLab's order: includes, then extends, then references."""

from __future__ import annotations

from typing import Any

from cijob.gitlab.errors import ConvertError, Pos
from cijob.gitlab.nodes import Map, Reference, Seq, deep_merge

# GitLab: an entry more than 10 ancestors deep may not extend further (eleven levels in all).
MAX_EXTENDS_LEVELS = 10
# GitLab resolves `!reference` tags nested up to 10 levels.
MAX_REFERENCE_DEPTH = 10


def _parents(key: str, value: Map) -> list[str]:
    ext = value["extends"]
    if isinstance(ext, str):
        return [ext]
    if isinstance(ext, Seq) and all(isinstance(e, str) for e in ext):
        return list(ext)
    raise ConvertError(value.at("extends"), f"{key}: extends must be a name or a list of names")


def _extend(config: Map, key: str, ancestors: list[str], done: dict[str, Map]) -> Map:
    value = config[key]
    if key in done:
        return done[key]
    if not isinstance(value, Map) or "extends" not in value:
        return value
    pos = value.at("extends")
    if key in ancestors:
        chain = " -> ".join([*ancestors[ancestors.index(key) :], key])
        raise ConvertError(pos, f"{key}: circular dependency in extends ({chain})")
    if len(ancestors) > MAX_EXTENDS_LEVELS:
        raise ConvertError(
            pos,
            f"{key}: extends nested too deep ({' -> '.join([*ancestors, key])}); GitLab allows "
            f"{MAX_EXTENDS_LEVELS + 1} levels",
        )
    merged: Any = Map(value.pos)
    for parent in _parents(key, value):
        if parent not in config:
            raise ConvertError(pos, f"{key}: extends unknown key {parent!r}")
        if not isinstance(config[parent], Map):
            raise ConvertError(pos, f"{key}: extends {parent!r}, which is not a mapping")
        merged = deep_merge(merged, _extend(config, parent, [*ancestors, key], done))
    result: Map = deep_merge(merged, value).copy_without("extends")
    done[key] = result
    return result


def apply_extends(config: Map) -> Map:
    """Every top-level entry with `extends` merged over its parents (last parent wins)."""
    done: dict[str, Map] = {}
    out = Map(config.pos)
    for key, value in config.items():
        resolved = _extend(config, key, [], done) if isinstance(value, Map) else value
        out.put(key, resolved, config.key_pos.get(key))
    return out


def _lookup(config: Map, ref: Reference) -> Any:
    node: Any = config
    for i, part in enumerate(ref.path):
        if not isinstance(node, Map) or part not in node:
            where = "the file" if i == 0 else "[" + ", ".join(ref.path[:i]) + "]"
            raise ConvertError(ref.pos, f"{ref} points to nothing: {where} has no {part!r}")
        node = node[part]
    return node


def _resolve(config: Map, value: Any, depth: int, pos: Pos | None) -> Any:
    if isinstance(value, Reference):
        if depth >= MAX_REFERENCE_DEPTH:
            raise ConvertError(
                value.pos, f"{value}: !reference nested deeper than {MAX_REFERENCE_DEPTH} levels"
            )
        return _resolve(config, _lookup(config, value), depth + 1, value.pos)
    if isinstance(value, Map):
        out = Map(value.pos)
        for k, v in value.items():
            out.put(k, _resolve(config, v, depth, value.key_pos.get(k)), value.key_pos.get(k))
        return out
    if isinstance(value, Seq):
        seq = Seq(value.pos)
        for i, v in enumerate(value):
            seq.append(_resolve(config, v, depth, value.item_pos[i]))
            seq.item_pos.append(value.item_pos[i])
        return seq
    return value


def resolve_references(config: Map) -> Map:
    """Every `!reference [a, b, ...]` replaced by what it names (nested references too)."""
    out: Map = _resolve(config, config, 0, config.pos)
    return out


def flatten(
    value: Any, pos: Pos | None, what: str, levels: int = 10
) -> tuple[list[str], Pos | None]:
    """A script: a string or nested lists of strings (GitLab flattens up to 10 levels)."""
    if isinstance(value, str):
        return [value], pos
    if not isinstance(value, Seq):
        raise ConvertError(pos, f"{what} must be a string or a list of strings")
    out: list[str] = []
    for i, item in enumerate(value):
        ipos = value.item_pos[i] or pos
        if isinstance(item, Seq):
            if levels <= 1:
                raise ConvertError(ipos, f"{what}: lists nested deeper than 10 levels")
            out += flatten(item, ipos, what, levels - 1)[0]
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise ConvertError(ipos, f"{what} must be a string or a list of strings")
    return out, value.pos or pos
