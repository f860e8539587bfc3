"""One GitLab job keyword at a time into CiJob spec fields (pure; warnings through `warn`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cijob.api.rules import ALIASES
from cijob.gitlab import retry as gl_retry
from cijob.gitlab.errors import ConvertError, Pos
from cijob.gitlab.keywords import PULL_POLICIES
from cijob.gitlab.nodes import Map, Seq
from cijob.gitlab.timeout import cijob_duration, parse_gitlab_duration
from cijob.images import InvalidImageReference, parse_image

_VAR_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_VARIABLE_KEYS = frozenset({"value", "description", "expand", "options"})
_IMAGE_KEYS = frozenset({"name", "entrypoint", "pull_policy", "docker", "kubernetes"})
_SERVICE_KEYS = _IMAGE_KEYS | {"alias", "command", "variables"}
_RETRY_KEYS = frozenset({"max", "when", "exit_codes"})
_ALIASES = re.compile(ALIASES)


@dataclass(frozen=True)
class Ctx:
    """The job being converted and where its warnings go."""

    job: str
    warn: Callable[[Pos | None, str], None]

    def error(self, pos: Pos | None, message: str) -> ConvertError:
        return ConvertError(pos, f"job {self.job!r}: {message}")


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def variable_value(ctx: Ctx, name: str, value: Any, pos: Pos | None) -> tuple[str, bool]:
    """(value, expand) of a variable, plain or `{value, description, expand, options}`."""
    if isinstance(value, Map):
        for key in value:
            if key not in _VARIABLE_KEYS:
                raise ctx.error(value.at(key), f"variable {name}: unknown key {key!r}")
        text = _scalar(value.get("value", ""))
        if text is None:
            raise ctx.error(value.at("value"), f"variable {name}: value must be a string")
        return text, value.get("expand", True) is not False
    text = _scalar(value)
    if text is None:
        raise ctx.error(pos, f"variable {name} must be a string, a number or {{value: ...}}")
    return text, True


def variables(ctx: Ctx, value: Any, pos: Pos | None) -> tuple[dict[str, str], list[str]]:
    """(name -> value as the CiJob holds it, names marked `expand: false`). The CiJob expands
    `$VAR` as GitLab does (docs/variables.md), so a raw value's `$` is written `$$`."""
    if value is None:
        return {}, []
    if not isinstance(value, Map):
        raise ctx.error(pos, "variables must be a mapping of names to values")
    out: dict[str, str] = {}
    raw_names = []
    for name, raw in value.items():
        text, expand = variable_value(ctx, name, raw, value.at(name))
        out[name] = text if expand else text.replace("$", "$$")
        if not expand:
            raw_names.append(name)
    return out, raw_names


def expand(text: str, env: Mapping[str, str], depth: int = 0) -> str:
    """`$VAR` / `${VAR}` from `env` (GitLab expands image names so); unknown ones stay."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in env and depth < 10:
            return expand(env[name], env, depth + 1)
        return m.group(0)

    return _VAR_REF.sub(sub, text)


def _strings(ctx: Ctx, value: Any, pos: Pos | None, what: str) -> list[str]:
    if not isinstance(value, Seq) or not all(isinstance(v, str) for v in value):
        raise ctx.error(pos, f"{what} must be a list of strings")
    return list(value)


def _pull_policy(ctx: Ctx, value: Any, pos: Pos | None, what: str) -> str:
    policies = [value] if isinstance(value, str) else value
    if not isinstance(policies, Seq | list) or not policies:
        raise ctx.error(pos, f"{what}: pull_policy must be a policy or a list of them")
    for p in policies:
        if p not in PULL_POLICIES:
            raise ctx.error(
                pos, f"{what}: pull_policy {p!r} is not one of {', '.join(PULL_POLICIES)}"
            )
    if len(policies) > 1:
        ctx.warn(
            pos,
            f"{what}: pull_policy {list(policies)}: the CiJob takes one policy, {policies[0]!r} "
            "(GitLab tries the next on a failed pull)",
        )
    return str(policies[0])


def _name(ctx: Ctx, value: Any, pos: Pos | None, what: str, env: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value:
        raise ctx.error(pos, f"{what}: the image name must be a string")
    name = expand(value, env)
    if _VAR_REF.search(name):
        ctx.warn(
            pos,
            f"{what}: {value!r} refers to variables the file does not define "
            "(CI_* variables are GitLab's); set them or name the image",
        )
        return name
    try:
        parse_image(name)
    except InvalidImageReference as exc:
        # the API server would refuse it at apply time; say so here, with the line
        raise ctx.error(pos, f"{what}: {exc}") from None
    return name


def _extras(ctx: Ctx, value: Map, what: str) -> None:
    for key in ("docker", "kubernetes"):
        if key in value:
            ctx.warn(value.at(key), f"{what}:{key} is not carried out (platform and user options)")


def image(ctx: Ctx, value: Any, pos: Pos | None, env: Mapping[str, str]) -> str | dict[str, Any]:
    """`image: ruby:2.6` or `{name, entrypoint, pull_policy}` -> `image:` in the same form."""
    if not isinstance(value, Map):
        return _name(ctx, value, pos, "image", env)
    for key in value:
        if key not in _IMAGE_KEYS:
            raise ctx.error(value.at(key), f"image: unknown key {key!r}")
    if "name" not in value:
        raise ctx.error(value.pos, "image: a map needs name")
    out: dict[str, Any] = {"name": _name(ctx, value["name"], value.at("name"), "image", env)}
    if "entrypoint" in value:
        out["entrypoint"] = _strings(
            ctx, value["entrypoint"], value.at("entrypoint"), "image:entrypoint"
        )
    if "pull_policy" in value:
        out["pullPolicy"] = _pull_policy(
            ctx, value["pull_policy"], value.at("pull_policy"), "image"
        )
    _extras(ctx, value, "image")
    return out if len(out) > 1 else out["name"]


def _service(ctx: Ctx, value: Any, pos: Pos | None, env: Mapping[str, str]) -> str | dict[str, Any]:
    if not isinstance(value, Map):
        return _name(ctx, value, pos, "services", env)
    for key in value:
        if key not in _SERVICE_KEYS:
            raise ctx.error(value.at(key), f"services: unknown key {key!r}")
    if "name" not in value:
        raise ctx.error(value.pos, "services: a map needs name")
    out: dict[str, Any] = {"name": _name(ctx, value["name"], value.at("name"), "services", env)}
    if "alias" in value:
        if not isinstance(value["alias"], str):
            raise ctx.error(value.at("alias"), "services: alias must be a string")
        if not _ALIASES.match(value["alias"]):
            raise ctx.error(
                value.at("alias"),
                f"services: alias {value['alias']!r}: each alias must be a DNS-1123 label "
                "(lowercase letters, digits and '-'), separated by commas or spaces",
            )
        out["alias"] = value["alias"]
    for key in ("entrypoint", "command"):
        if key in value:
            out[key] = _strings(ctx, value[key], value.at(key), f"services:{key}")
    if "variables" in value:
        svc_vars, _ = variables(ctx, value["variables"], value.at("variables"))
        out["variables"] = svc_vars
    if "pull_policy" in value:
        out["pullPolicy"] = _pull_policy(
            ctx, value["pull_policy"], value.at("pull_policy"), "services"
        )
    _extras(ctx, value, "services")
    return out if len(out) > 1 else out["name"]


def services(
    ctx: Ctx, value: Any, pos: Pos | None, env: Mapping[str, str]
) -> list[str | dict[str, Any]]:
    if not isinstance(value, Seq):
        raise ctx.error(pos, "services must be a list")
    return [_service(ctx, v, value.item_pos[i] or pos, env) for i, v in enumerate(value)]


def timeout(ctx: Ctx, value: Any, pos: Pos | None) -> str:
    """`1h 30m`, `3 hours 20 minutes` -> `1h30m`, `3h20m`."""
    text = _scalar(value)
    if text is None:
        raise ctx.error(pos, "timeout must be a duration such as 1h 30m")
    try:
        seconds = parse_gitlab_duration(text)
    except ValueError as exc:
        raise ctx.error(pos, f"timeout: {exc}") from None
    if seconds < 1:
        raise ctx.error(pos, f"timeout {text!r} is shorter than one second")
    return cijob_duration(seconds)


def _retry_max(ctx: Ctx, value: Any, pos: Pos | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2:
        raise ctx.error(pos, "retry: max must be 0, 1 or 2 (GitLab's limit)")
    return value


def retry(ctx: Ctx, value: Any, pos: Pos | None) -> dict[str, Any] | None:
    """`retry: 2` or `{max, when, exit_codes}` -> `{max, when}` with CiJob reasons."""
    if not isinstance(value, Map):
        return {"max": _retry_max(ctx, value, pos)}
    for key in value:
        if key not in _RETRY_KEYS:
            raise ctx.error(value.at(key), f"retry: unknown key {key!r}")
    out: dict[str, Any] = {"max": _retry_max(ctx, value.get("max", 0), value.at("max"))}
    when_pos = value.at("when")
    if "when" in value:
        raw = value["when"]
        whens = [raw] if isinstance(raw, str) else raw
        if not isinstance(whens, Seq | list) or not all(isinstance(w, str) for w in whens):
            raise ctx.error(when_pos, "retry: when must be a failure type or a list of them")
        reasons, unmapped, unknown = gl_retry.map_when(list(whens))
        if unknown:
            raise ctx.error(when_pos, f"retry: unknown failure type {unknown[0]!r}")
        if unmapped:
            ctx.warn(
                when_pos, f"retry:when {', '.join(unmapped)}: no such failure here, not carried"
            )
        if reasons is not None:
            if not reasons:
                ctx.warn(when_pos, "retry: none of the failure types happens here; not retried")
                return None
            out["when"] = reasons
    if "exit_codes" in value:
        codes = value["exit_codes"]
        codes_list = [codes] if isinstance(codes, int) else codes
        if not isinstance(codes_list, Seq | list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in codes_list
        ):
            raise ctx.error(value.at("exit_codes"), "retry: exit_codes must be numbers")
        if not all(0 <= c <= 255 for c in codes_list):
            raise ctx.error(value.at("exit_codes"), "retry: exit_codes must be 0..255")
        if gl_retry.has_exit_codes():
            out["exitCodes"] = list(codes_list)
        else:
            if "when" not in value:
                # GitLab then retries only script failures with those codes: the closest here
                out["when"] = ["ScriptFailure"]
            ctx.warn(
                value.at("exit_codes"),
                f"retry:exit_codes {list(codes_list)} is not carried (the CRD has no "
                "retry.exitCodes): retries do not look at the exit code",
            )
    return out
