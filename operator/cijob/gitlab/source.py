"""GitLab's checkout variables (GIT_STRATEGY, GIT_DEPTH, GIT_SUBMODULE_STRATEGY) as spec.source."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Warn = Callable[[str, str], None]  # (variable, message)
NO_CHECKOUT = ("none", "empty")
SUBMODULES = ("none", "normal", "recursive")


def git_source(
    variables: Mapping[str, str], checkout: Mapping[str, Any] | None, warn: Warn
) -> dict[str, Any] | None:
    """spec.source for a job with `variables`, cloning `checkout` ({url, commit, ...}: the
    repository the job comes from); None when there is none or GIT_STRATEGY skips it."""
    strategy = variables.get("GIT_STRATEGY", "clone")
    if strategy in NO_CHECKOUT:
        return None
    if strategy not in ("clone", "fetch"):
        warn("GIT_STRATEGY", f"GIT_STRATEGY {strategy!r} is not clone, fetch, none or empty")
    if checkout is None:
        for name in ("GIT_STRATEGY", "GIT_DEPTH", "GIT_SUBMODULE_STRATEGY"):
            if name in variables:
                warn(
                    name,
                    f"{name} is not carried out: no repository to clone (run `cijob run` in a "
                    "git checkout, or add spec.source)",
                )
        return None
    git = dict(checkout)
    depth = variables.get("GIT_DEPTH")
    if depth is not None:
        if depth.strip().isdigit():
            git["depth"] = int(depth)
        else:
            warn("GIT_DEPTH", f"GIT_DEPTH {depth!r} is not a number: the default depth is used")
    submodules = variables.get("GIT_SUBMODULE_STRATEGY")
    if submodules is not None:
        if submodules in SUBMODULES:
            git["submodules"] = submodules
        else:
            warn(
                "GIT_SUBMODULE_STRATEGY",
                f"GIT_SUBMODULE_STRATEGY {submodules!r} is not none, normal or recursive",
            )
    return {"git": git}
