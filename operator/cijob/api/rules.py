"""Validation rules (CEL and schema keywords) the API server applies when a CiJob is applied."""

from __future__ import annotations

from typing import Any

from docker_image import regexp as docker_regexp

# The distribution library's reference grammar (the same one docker-image-py mirrors), which
# RE2, the regex engine of the API server's CEL, accepts unchanged.
IMAGE_REFERENCE = docker_regexp.REFERENCE_PAT
# Only the algorithms the distribution code verifies, with their exact lengths.
DIGEST = r"^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$"
DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
ALIASES = rf"^[\s,]*{DNS1123_LABEL}([\s,]+{DNS1123_LABEL})*[\s,]*$"
DURATION = r"^\s*([0-9]+\s*(h|m|s)\s*)+$"
PROJECT = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"
MAX_IMAGE_LENGTH = 512
# A URL git can fetch, with at most a user name before the host (a password belongs in the
# Secret), or scp-like `user@host:path`.
_GIT_HOST = r"([A-Za-z0-9._~-]+@)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"
GIT_URL = rf"^((https?|ssh|git)://{_GIT_HOST}(:[0-9]{{1,5}})?/[^\s]+|{_GIT_HOST}:(/?[^/\s])[^\s]*)$"
# git check-ref-format's rules that a shell argument needs, and no leading '-' (an option).
GIT_REF = r"^[^-\s~^:?*\[\\][^\s~^:?*\[\\]*$"
GIT_COMMIT = r"^([0-9a-f]{40}|[0-9a-f]{64})$"

IMAGE_MESSAGE = (
    "must be an image reference like ruby:2.6, registry.example.com:5000/group/image:tag "
    "or name@sha256:<64 hex>, with a lowercase repository path"
)
DIGEST_MESSAGE = "digest must be sha256: followed by 64 lowercase hex characters"

Extra = dict[str, Any]


def _string_rules(var: str) -> list[dict[str, str]]:
    """Rules for an image reference held in the CEL expression `var`. A name that refers to
    variables (`ruby:$RUBY_VERSION`) is checked by the operator once it has expanded them."""
    return [
        {
            "rule": f"{var}.contains('$') || {var}.matches(r'{IMAGE_REFERENCE}')",
            "message": IMAGE_MESSAGE,
        },
        {
            "rule": f"{var}.contains('$') || !{var}.contains('@') || "
            f"{var}.substring({var}.indexOf('@') + 1).matches(r'{DIGEST}')",
            "message": DIGEST_MESSAGE,
        },
    ]


def image_reference(_field: str) -> Extra:
    """A plain string field holding an image reference."""
    return {"maxLength": MAX_IMAGE_LENGTH, "x-kubernetes-validations": _string_rules("self")}


def image_field(_field: str) -> Extra:
    """`image`: a string or `{name, entrypoint, pullPolicy}`; see cijob.api.policy."""
    return {"x-cijob-union": True}


def services_field() -> Extra:
    """`services`: each item a string or `{name, alias, ...}`; see cijob.api.policy."""
    return {"x-cijob-items-union": True, "maxItems": 32}


def aliases() -> Extra:
    return {
        "maxLength": 1024,
        "x-kubernetes-validations": [
            {
                "rule": f"self.matches(r'{ALIASES}')",
                "message": "each alias must be a DNS-1123 label (lowercase letters, digits and "
                "'-', at most 63 characters), separated by commas or spaces",
            }
        ],
    }


def duration() -> Extra:
    return {
        "maxLength": 64,
        "x-kubernetes-validations": [
            {
                "rule": f"self.matches(r'{DURATION}')",
                "message": "must be a duration like 1h, 30m, 1h30m or 90s",
            }
        ],
    }


def project_path() -> Extra:
    return {
        "maxLength": 255,
        "x-kubernetes-validations": [
            {
                "rule": f"self.matches(r'{PROJECT}') && !('/' + self + '/').contains('/./') "
                "&& !('/' + self + '/').contains('/../')",
                "message": "must be a relative path like group/project, without '.' or '..'",
            }
        ],
    }


def exactly_one_of(*fields: str) -> Extra:
    has = ", ".join(f"has(self.{f})" for f in fields)
    return {
        "x-kubernetes-validations": [
            {
                "rule": f"[{has}].filter(x, x).size() == 1",
                "message": "exactly one of " + " or ".join(fields) + " must be set",
            }
        ]
    }


def variables_from_source() -> Extra:
    """One source each; `variable` names what a secretKeyRef sets, and goes with nothing else."""
    rules = exactly_one_of("secretRef", "configMapRef", "secretKeyRef")["x-kubernetes-validations"]
    return {
        "x-kubernetes-validations": [
            *rules,
            {
                "rule": "has(self.secretKeyRef) == has(self.variable)",
                "message": "variable must be set with secretKeyRef, and only with it",
            },
            {
                "rule": "!has(self.secretKeyRef) || !has(self.prefix)",
                "message": "prefix is for secretRef and configMapRef, not secretKeyRef",
            },
        ]
    }


def _matching(pattern: str, message: str, max_length: int | None = None, extra: str = "") -> Extra:
    """A string field that must match `pattern` (and the CEL condition `extra`)."""
    out: Extra = {
        "x-kubernetes-validations": [
            {"rule": f"self.matches(r'{pattern}')" + extra, "message": message}
        ]
    }
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def git_url() -> Extra:
    return _matching(
        GIT_URL,
        "must be an https://, http://, ssh:// or git:// URL, or scp-like user@host:path, "
        "without a password (credentials go in secretRef)",
        2048,
    )


def git_ref() -> Extra:
    return _matching(
        GIT_REF,
        "must be a branch or tag name: no spaces, no leading '-', none of ~ ^ : ? * [ or "
        "backslash, no '..' or '@{'",
        255,
        " && !self.contains('..') && !self.endsWith('/') && !self.endsWith('.lock') "
        "&& !self.contains('@{')",
    )


def git_commit() -> Extra:
    return _matching(GIT_COMMIT, "must be a full commit id: 40 or 64 lowercase hex characters")


def int_or_string() -> Extra:
    return {"x-kubernetes-int-or-string": True}


def spec_rules() -> Extra:
    return {}


def root_rules() -> list[dict[str, str]]:
    """Rules on the whole object: the name becomes a label value and a pod name prefix."""
    return [
        {
            "rule": "self.metadata.name.size() <= 60",
            "message": "metadata.name must be at most 60 characters: it becomes a label value "
            "and, with the attempt number, the pod name",
        }
    ]
