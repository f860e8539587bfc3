"""`include:`: local files (a string, a list, `{local: ...}`, globs) merged as GitLab merges them.

Every included file is merged in order, later ones over earlier ones, and the including file over
them all (hashes deep-merged, anything else replaced). Local paths are relative to the project
root (the git checkout holding the main file, else its directory), with or without a leading
`/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cijob.gitlab.errors import ConvertError, Pos, Warning_
from cijob.gitlab.loader import load_config
from cijob.gitlab.nodes import Map, Seq, deep_merge

# GitLab's limits: 150 included files per pipeline, nested at most 100 deep.
MAX_INCLUDES = 150
MAX_DEPTH = 100
_OTHER_KINDS = ("remote", "project", "template", "component", "file")
_GLOB_CHARS = re.compile(r"[*?\[{]")

Warn = Callable[[Warning_], None]


@dataclass
class _State:
    root: Path
    warn: Warn
    seen: set[Path] = field(default_factory=set)
    main_text: str | None = None  # the main file's text when it came from stdin


def glob_regex(pattern: str) -> re.Pattern[str]:
    """GitLab's include globs: `*` within a directory, `**` across them, `{a,b}`, `?`, `[..]`."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "{":
            end = pattern.find("}", i)
            if end < 0:
                out += re.escape(c)
            else:
                alts = pattern[i + 1 : end].split(",")
                out += "(?:" + "|".join(re.escape(a) for a in alts) + ")"
                i = end
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape(c)
            else:
                out += pattern[i : end + 1]
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def _files(root: Path) -> Iterator[str]:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if ".git" not in rel.parts and p.is_file():
            yield rel.as_posix()


def _local_paths(state: _State, spec: str, pos: Pos | None) -> list[str]:
    rel = spec.lstrip("/")
    if not rel or ".." in Path(rel).parts:
        raise ConvertError(pos, f"include: local path {spec!r} must name a file in the project")
    if not rel.endswith((".yml", ".yaml")):
        raise ConvertError(pos, f"include: local file {spec!r} must end in .yml or .yaml")
    if _GLOB_CHARS.search(rel):
        rx = glob_regex(rel)
        found = [f for f in _files(state.root) if rx.match(f)]
        if not found:
            raise ConvertError(pos, f"include: no file matches {spec!r} under {state.root}")
        return found
    if not (state.root / rel).is_file():
        raise ConvertError(pos, f"include: local file {spec!r} not found under {state.root}")
    return [rel]


def _entries(value: Any, pos: Pos | None) -> list[tuple[Any, Pos | None]]:
    if isinstance(value, Seq):
        return [(v, value.item_pos[i] or pos) for i, v in enumerate(value)]
    return [(value, pos)]


def _resolve(state: _State, entry: Any, pos: Pos | None) -> list[str]:
    """The local files one `include:` entry names; other kinds are warned about."""
    if isinstance(entry, str):
        if re.match(r"^https?://", entry):
            state.warn(Warning_(pos, f"include: remote {entry!r} is not fetched (local only)"))
            return []
        return _local_paths(state, entry, pos)
    if isinstance(entry, Map):
        if "local" in entry:
            local = entry["local"]
            if not isinstance(local, str):
                raise ConvertError(entry.at("local"), "include: local must be a path")
            for key in entry:
                if key != "local":
                    state.warn(
                        Warning_(
                            entry.at(key),
                            f"include: {key} is not carried out "
                            "(the file is included unconditionally, as written)",
                        )
                    )
            return _local_paths(state, local, entry.at("local"))
        kind = next((k for k in _OTHER_KINDS if k in entry), None)
        if kind is not None:
            state.warn(Warning_(entry.at(kind), f"include: {kind} is not fetched (local only)"))
            return []
    raise ConvertError(pos, "include: each entry must be a path or a map with local:")


def _expand(state: _State, rel: str, name: str, depth: int) -> Map:
    if depth > MAX_DEPTH:
        raise ConvertError(None, f"{name}: includes nested deeper than {MAX_DEPTH}")
    text = state.main_text if depth == 0 else None
    config = load_config(state.root / rel, name, state.warn, text)
    if "include" not in config:
        return config
    merged = Map(config.pos)
    for entry, pos in _entries(config["include"], config.at("include")):
        for path in _resolve(state, entry, pos):
            resolved = (state.root / path).resolve()
            if resolved in state.seen:
                continue  # included already: merging it again changes nothing
            state.seen.add(resolved)
            if len(state.seen) > MAX_INCLUDES + 1:
                raise ConvertError(pos, f"include: more than {MAX_INCLUDES} files")
            merged = deep_merge(merged, _expand(state, path, path, depth + 1))
    out: Map = deep_merge(merged, config.copy_without("include"))
    return out


def project_root(main: Path) -> Path:
    """The git checkout holding `main` (GitLab's local paths start at the project's root), or
    `main`'s directory outside a checkout."""
    start = main.resolve().parent
    for d in [start, *start.parents]:
        if (d / ".git").exists():
            return d
    return start


def load_with_includes(main: Path, name: str, warn: Warn, text: str | None = None) -> Map:
    """The main file with its local includes merged in; `name` is how messages call it.

    With `text` (the file read from stdin), `main` only places it: includes are found from
    `main`'s directory as for a file there."""
    root = project_root(main)
    state = _State(root=root, warn=warn, seen={main.resolve()}, main_text=text)
    return _expand(state, main.resolve().relative_to(root).as_posix(), name, 0)
