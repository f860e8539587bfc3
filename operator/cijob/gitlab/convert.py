"""A `.gitlab-ci.yml` (with its includes, extends and references) into one CiJob per job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cijob import api
from cijob.api.spec import CiJobSpec
from cijob.credentials.sources import ENV_VAR as DOCKER_AUTH_CONFIG
from cijob.gitlab import fields, keywords
from cijob.gitlab.errors import ConvertError, Pos, Warning_
from cijob.gitlab.includes import load_with_includes
from cijob.gitlab.names import JOB_ANNOTATION, object_name
from cijob.gitlab.nodes import Map, Seq
from cijob.gitlab.resolve import apply_extends, flatten, resolve_references
from cijob.gitlab.source import git_source

Manifest = dict[str, Any]


@dataclass
class Result:
    """The CiJobs in stage order, and every warning about what they do not carry."""

    manifests: list[Manifest] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)


def _stages(config: Map) -> list[str]:
    key = "stages" if "stages" in config else "types"
    raw = config.get(key)
    if raw is None:
        return list(keywords.DEFAULT_STAGES)
    if not isinstance(raw, Seq) or not all(isinstance(s, str) for s in raw):
        raise ConvertError(config.at(key), f"{key} must be a list of stage names")
    # .pre and .post are always the first and last stage, whatever the list says.
    middle = [s for s in raw if s not in (".pre", ".post")]
    return [".pre", *middle, ".post"]


def _defaults(config: Map, warn: Any) -> Map:
    """`default:` with the deprecated top-level globals under it (`default:` wins)."""
    default = config.get("default")
    if default is not None and not isinstance(default, Map):
        raise ConvertError(config.at("default"), "default must be a mapping")
    out = Map(default.pos if default is not None else config.pos)
    for key in keywords.GLOBAL_DEFAULTS:
        if key in config:
            out.put(key, config[key], config.at(key))
    for key, value in (default or Map()).items():
        if key not in keywords.DEFAULT_KEYS:
            raise ConvertError(
                default.at(key) if default else None,
                f"default: {key!r} is not a keyword default: may hold",
            )
        if key in out:
            warn(config.at(key), f"top-level {key} is overridden by default:{key}")
        out.put(key, value, default.at(key) if default else None)
    return out


def _inherits(job: Map, what: str, key: str) -> bool:
    inherit = job.get("inherit")
    if not isinstance(inherit, Map) or what not in inherit:
        return True
    value = inherit[what]
    if isinstance(value, bool):
        return value
    return isinstance(value, Seq) and key in value


def _effective(name: str, job: Map, defaults: Map) -> Map:
    """The job with what it inherits from `default:`; a job's own keyword replaces it whole."""
    out = Map(job.pos)
    for key, value in defaults.items():
        if key not in job and _inherits(job, "default", key):
            out.put(key, value, defaults.at(key))
    for key, value in job.items():
        out.put(key, value, job.at(key))
    return out


def _var_pos(holder: Map, name: str) -> Pos | None:
    """The line of variable `name` in `holder`'s `variables:` (else of the key itself)."""
    block = holder.get("variables")
    return block.at(name) if isinstance(block, Map) else holder.at("variables")


def _variables(ctx: fields.Ctx, config: Map, job: Map) -> dict[str, str]:
    # Values keep their `$VAR` references: the CiJob expands them as GitLab does.
    globals_, _ = fields.variables(ctx, config.get("variables"), config.at("variables"))
    inherited = {k: v for k, v in globals_.items() if _inherits(job, "variables", k)}
    own, _ = fields.variables(ctx, job.get("variables"), job.at("variables"))
    merged = {**inherited, **own}
    return merged


def _warn_keys(ctx: fields.Ctx, job: Map) -> None:
    for key in job:
        if key in keywords.CARRIED or key in keywords.STRUCTURE:
            continue
        why = keywords.NOT_CARRIED.get(key)
        if why is not None:
            ctx.warn(job.at(key), f"{key} is not carried out: {why}")
        else:
            ctx.warn(job.at(key), f"{key} is not a GitLab job keyword; ignored")


def convert_job(
    name: str,
    config: Map,
    stages: list[str],
    defaults: Map,
    warn: Any,
    checkout: Mapping[str, Any] | None = None,
) -> Manifest | None:
    """The CiJob of job `name` of a resolved config; None for a job the CiJob cannot run."""
    raw = config[name]
    pos = config.at(name)

    def job_warn(p: Pos | None, message: str) -> None:
        warn(p or pos, f"job {name!r}: {message}")

    ctx = fields.Ctx(job=name, warn=job_warn)
    if not isinstance(raw, Map):
        raise ctx.error(pos, "a job must be a mapping")
    job = _effective(name, raw, defaults)
    stage = job.get("stage", keywords.DEFAULT_STAGE)
    if stage not in stages:
        raise ctx.error(job.at("stage"), f"stage {stage!r} is not in stages ({', '.join(stages)})")
    _warn_keys(ctx, job)
    if "script" not in job:
        if "trigger" in job or "run" in job:
            return None  # warned about above: nothing for a pod to run
        raise ctx.error(pos, "no script (GitLab needs script, run or trigger)")
    env = _variables(ctx, config, job)
    if DOCKER_AUTH_CONFIG in env:
        own = isinstance(job.get("variables"), Map) and DOCKER_AUTH_CONFIG in job["variables"]
        ctx.warn(
            _var_pos(job, DOCKER_AUTH_CONFIG) if own else _var_pos(config, DOCKER_AUTH_CONFIG),
            f"{DOCKER_AUTH_CONFIG} in variables is refused at apply unless the platform allows "
            "it (a CiJob is readable with the view role): put it in a Secret and name it in "
            "variablesFrom (docs/pod-policy.md)",
        )
    spec: dict[str, Any] = {}
    if "image" in job:
        spec["image"] = fields.image(ctx, job["image"], job.at("image"), env)
    if "services" in job:
        spec["services"] = fields.services(ctx, job["services"], job.at("services"), env)
    if env:
        spec["variables"] = env

    def git_warn(variable: str, message: str) -> None:
        own = isinstance(job.get("variables"), Map) and variable in job["variables"]
        ctx.warn(_var_pos(job, variable) if own else _var_pos(config, variable), message)

    source = git_source(env, checkout, git_warn)
    if source is not None:
        spec["source"] = source
    for key, target in (("before_script", "beforeScript"), ("script", "script"),
                        ("after_script", "afterScript")):  # fmt: skip
        if key in job:
            lines, _ = flatten(job[key], job.at(key), key)
            if lines or key == "script":
                spec[target] = lines
    if not spec["script"]:
        raise ctx.error(job.at("script"), "script is empty")
    if "timeout" in job:
        spec["timeout"] = fields.timeout(ctx, job["timeout"], job.at("timeout"))
    if "retry" in job:
        retry = fields.retry(ctx, job["retry"], job.at("retry"))
        if retry is not None:
            spec["retry"] = retry
    try:
        CiJobSpec.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ctx.error(pos, f"not a valid CiJob: spec.{loc}: {err['msg']}") from None
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": object_name(name), "annotations": {JOB_ANNOTATION: name}},
        "spec": spec,
    }


def job_names(config: Map) -> list[str]:
    """The jobs of a resolved config: top-level keys that are neither keywords nor hidden."""
    return [k for k in config if k not in keywords.TOP_LEVEL and not k.startswith(".")]


def load(
    path: Path, name: str | None = None, text: str | None = None
) -> tuple[Map, list[Warning_]]:
    """The configuration as GitLab sees it once includes, extends and references are done."""
    warnings: list[Warning_] = []
    config = load_with_includes(path, name or str(path), warnings.append, text)
    return resolve_references(apply_extends(config)), warnings


def convert(
    path: Path,
    jobs: list[str] | None = None,
    name: str | None = None,
    text: str | None = None,
    checkout: Mapping[str, Any] | None = None,
) -> Result:
    """The CiJobs of `jobs` (default: every job) of the file at `path` (or of `text`, placed
    at `path`), in stage order; with `checkout` ({url, commit}), each clones it."""
    config, warnings = load(path, name, text)
    result = Result(warnings=warnings)

    def warn(pos: Pos | None, message: str) -> None:
        result.warnings.append(Warning_(pos, message))

    if "workflow" in config:
        warn(config.at("workflow"), "workflow is not carried out: every job is converted")
    if "cache" in config:
        warn(config.at("cache"), "top-level cache is not carried out: no cache is kept")
    stages = _stages(config)
    defaults = _defaults(config, warn)
    names = job_names(config)
    if not names and not jobs:
        # GitLab refuses such a pipeline too: there is nothing to run
        raise ConvertError(config.pos, "no jobs (only hidden jobs and keywords)")
    if jobs:
        for wanted in jobs:
            if wanted not in config:
                known = ", ".join(names) or "none"
                raise ConvertError(config.pos, f"no job {wanted!r} (jobs: {known})")
            if wanted not in names:
                raise ConvertError(
                    config.at(wanted), f"{wanted!r} is not a job (hidden or a keyword)"
                )
        names = [n for n in names if n in jobs]
    converted = []
    for job in names:
        manifest = convert_job(job, config, stages, defaults, warn, checkout)
        if manifest is None and jobs:
            raise ConvertError(config.at(job), f"job {job!r} has no script for a pod to run")
        if manifest is not None:
            stage = config[job].get("stage", keywords.DEFAULT_STAGE)
            converted.append((stages.index(stage), manifest))
    seen: dict[str, str] = {}
    for _, m in converted:
        obj = m["metadata"]["name"]
        if obj in seen:
            raise ConvertError(
                config.at(m["metadata"]["annotations"][JOB_ANNOTATION]),
                f"jobs {seen[obj]!r} and {m['metadata']['annotations'][JOB_ANNOTATION]!r} "
                f"both become CiJob {obj!r}",
            )
        seen[obj] = m["metadata"]["annotations"][JOB_ANNOTATION]
    result.manifests = [m for _, m in sorted(converted, key=lambda t: t[0])]
    return result
