"""Loads a YAML file as GitLab does (YAML 1.1, anchors, `<<` merge keys, `!reference`), keeping
the line of every key and item."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cijob.gitlab.errors import ConvertError, Pos, Warning_
from cijob.gitlab.nodes import Map, Reference, Seq

REFERENCE_TAG = "!reference"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose maps and sequences carry positions; `file` names them."""

    file = "<input>"


def _pos(loader: _Loader, node: yaml.Node) -> Pos:
    return Pos(loader.file, node.start_mark.line + 1)


def _key(value: Any) -> str:
    # Psych and PyYAML both read `on:` or `true:` as a boolean key; GitLab keys are strings.
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Map:
    loader.flatten_mapping(node)  # resolves `<<` merge keys, as Psych does
    out = Map(_pos(loader, node))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Map | Seq):
            raise ConvertError(_pos(loader, key_node), "a mapping key must be a plain value")
        out.put(_key(key), loader.construct_object(value_node, deep=True), _pos(loader, key_node))
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Seq:
    out = Seq(_pos(loader, node))
    for item in node.value:
        out.append(loader.construct_object(item, deep=True))
        out.item_pos.append(_pos(loader, item))
    return out


def _construct_reference(loader: _Loader, node: yaml.Node) -> Reference:
    pos = _pos(loader, node)
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise ConvertError(pos, "!reference needs a list such as [.job, script]")
    parts = [loader.construct_object(n, deep=True) for n in node.value]
    if not all(isinstance(p, str | int) and not isinstance(p, bool) for p in parts):
        raise ConvertError(pos, "!reference items must be names, such as [.job, script]")
    return Reference(tuple(str(p) for p in parts), pos)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor(REFERENCE_TAG, _construct_reference)


def load_documents(text: str, name: str) -> list[Any]:
    """Every YAML document of `text`; ConvertError names the file and line of a syntax error."""
    loader = _Loader(text)
    loader.file = name
    try:
        docs = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            docs.append(loader.get_data())
        return docs
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or exc.context or "invalid YAML"
        raise ConvertError(Pos(name, line), f"YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ConvertError(Pos(name, 1), f"YAML: {exc}") from None
    finally:
        loader.dispose()


def read_text(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConvertError(None, f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConvertError(None, f"{name}: cannot be read: {exc}") from None


def load_config(
    path: Path,
    name: str,
    warn: Callable[[Warning_], None] | None = None,
    text: str | None = None,
) -> Map:
    """The configuration of one CI file (`text`, else the file's): its only document, or the one
    after a `spec:` header."""
    text = read_text(path, name) if text is None else text
    docs = [d for d in load_documents(text, name) if d is not None]
    if len(docs) == 2 and isinstance(docs[0], Map) and "spec" in docs[0]:
        # GitLab's header document (`spec: inputs:`) comes first; the config is the second.
        if warn is not None:
            warn(
                Warning_(
                    docs[0].at("spec"),
                    "spec: inputs are not interpolated: $[[ inputs.* ]] stays as written",
                )
            )
        docs = docs[1:]
    if not docs:
        return Map(Pos(name, 1))
    if len(docs) > 1:
        raise ConvertError(
            Pos(name, 1),
            "more than one YAML document (only a spec: header may precede the configuration)",
        )
    if not isinstance(docs[0], Map):
        raise ConvertError(Pos(name, 1), "the CI configuration must be a mapping")
    return docs[0]
