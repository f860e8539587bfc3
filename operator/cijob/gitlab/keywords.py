"""GitLab's keywords, and what the CiJob does with each (carries, ignores with a warning)."""

from __future__ import annotations

# Top-level keys that are not jobs (`types` is the deprecated name of `stages`).
TOP_LEVEL = frozenset(
    {
        "default",
        "include",
        "stages",
        "types",
        "variables",
        "workflow",
        "spec",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    }
)
# Deprecated top-level globals: what `default:` says now.
GLOBAL_DEFAULTS = ("image", "services", "cache", "before_script", "after_script")
# What `default:` may hold; a job that sets a keyword itself replaces the default.
DEFAULT_KEYS = (
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
)
DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
DEFAULT_STAGE = "test"
# Keys the converter turns into CiJob fields, or uses to build the job.
CARRIED = frozenset(
    {"script", "before_script", "after_script", "image", "services", "variables", "timeout",
     "retry"}
)  # fmt: skip
STRUCTURE = frozenset({"extends", "stage", "inherit"})
# Job keywords the CiJob does not carry out, and why: each one is a warning per job.
NOT_CARRIED: dict[str, str] = {
    "allow_failure": "the job's result is its own; nothing downstream to allow",
    "artifacts": "artifacts are not collected",
    "cache": "no cache is restored or saved",
    "coverage": "coverage is not parsed",
    "dast_configuration": "no DAST profiles",
    "dependencies": "no artifacts are passed between jobs",
    "environment": "no deployments are recorded",
    "hooks": "pre_get_sources_script hooks do not run (nothing is cloned)",
    "identity": "no identity federation",
    "id_tokens": "no OIDC tokens are issued",
    "interruptible": "jobs are canceled only with spec.cancel",
    "manual_confirmation": "jobs are not manual",
    "needs": "each job runs alone; no pipeline orders them",
    "only": "the job is converted whatever refs and changes",
    "except": "the job is converted whatever refs and changes",
    "pages": "nothing is published",
    "parallel": "one CiJob per job, not one per parallel instance",
    "release": "no release is created",
    "resource_group": "jobs are not serialized",
    "rules": "the job is converted whatever the rules say",
    "run": "run steps are not supported",
    "secrets": "no external secrets are fetched (use variablesFrom)",
    "start_in": "jobs start when applied",
    "tags": "runner tags do not select nodes (use nodeSelector)",
    "trigger": "child and multi-project pipelines are not run",
    "when": "jobs run when applied",
}
PULL_POLICIES = ("always", "if-not-present", "never")
