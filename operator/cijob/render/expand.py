"""GitLab's variable expansion (`$VAR`, `${VAR}`, `$$`) of variable values and image names.

The rules, and where each predefined variable comes from, are in docs/variables.md."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from cijob.errors import InvalidSpec

# `$$` first, so `$$VAR` is a literal `$VAR`; then `${NAME}` and `$NAME`.
_REFERENCE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

# A value once expanded: literal text, and references to variables only the pod knows.
Piece = tuple[str, str]  # ("text", literal) or ("runtime", name)


class Expander:
    """Expands references among `known` variables (plain values, themselves expanded in turn)
    and to `runtime` ones: those only the pod knows (a Secret's key, a downward API field),
    which an env value gets as the kubelet's own `$(NAME)` reference."""

    def __init__(
        self, known: Mapping[str, str], runtime: Collection[str] = (), any_runtime: bool = False
    ) -> None:
        self.known = dict(known)
        self.runtime = set(runtime)
        self.any_runtime = any_runtime  # every name not known is a runtime one
        self._done: dict[str, list[Piece]] = {}

    def _variable(self, name: str, stack: tuple[str, ...]) -> list[Piece]:
        if name in self._done:
            return self._done[name]
        if name in stack:
            cycle = " -> ".join([*stack[stack.index(name) :], name])
            raise InvalidSpec(f"variables refer to each other in a circle: {cycle}")
        pieces = self._pieces(self.known[name], (*stack, name))
        self._done[name] = pieces
        return pieces

    def _pieces(self, text: str, stack: tuple[str, ...] = ()) -> list[Piece]:
        out: list[Piece] = []
        last = 0
        for m in _REFERENCE.finditer(text):
            out.append(("text", text[last : m.start()]))
            last = m.end()
            name = m.group(2) or m.group(3)
            if m.group(1):
                out.append(("text", "$"))
            elif name in self.known:
                out.extend(self._variable(name, stack))
            elif name in self.runtime or self.any_runtime:
                out.append(("runtime", name))
            # else: GitLab Runner expands a variable nobody set to nothing
        out.append(("text", text[last:]))
        return out

    def env_value(self, text: str) -> str:
        """`text` expanded as an env value: literal `$` escaped as `$$` for the kubelet, which
        would otherwise expand `$(NAME)` in it itself."""
        return "".join(
            v.replace("$", "$$") if kind == "text" else f"$({v})" for kind, v in self._pieces(text)
        )

    def plain(self, text: str) -> str:
        """`text` expanded as plain text (an image name): its references must be known now."""
        out = []
        for kind, v in self._pieces(text):
            if kind == "runtime":
                raise InvalidSpec(f"${v} is known only once the pod runs")
            out.append(v)
        return "".join(out)


def image_name(field: str, name: str, expander: Expander) -> str:
    """An image or service name with its variables expanded; InvalidSpec names the field."""
    if "$" not in name:
        return name
    try:
        return expander.plain(name)
    except InvalidSpec as exc:
        raise InvalidSpec(f"{field}: {name!r}: {exc.message}") from None
