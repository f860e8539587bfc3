"""Whose an object is: its controller owner reference, the only proof (IsControlledBy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cijob import api

Body = Mapping[str, Any]


def controller_of(obj: Body) -> Mapping[str, Any] | None:
    """The owner reference marked `controller: true`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_controlled_by(obj: Body, uid: str) -> bool:
    """True only when the object's controller is the object with this uid."""
    ref = controller_of(obj)
    return bool(uid) and ref is not None and ref.get("uid") == uid


def held_by_a_cijob(obj: Body) -> bool:
    """Controlled by some CiJob: an earlier one of the same name, whose garbage collection
    will free the name; anything else holding it never will."""
    ref = controller_of(obj)
    return (
        ref is not None
        and ref.get("kind") == api.KIND
        and (str(ref.get("apiVersion", "")).split("/")[0] == api.GROUP)
    )


def describe(kind: str, obj: Body) -> str:
    """`Pod ns/name (controlled by CiJob x, uid u)`, for messages about a name conflict."""
    meta = obj.get("metadata") or {}
    ref = controller_of(obj)
    owner = (
        f"controlled by {ref.get('kind')} {ref.get('name')}, uid {ref.get('uid')}"
        if ref
        else ("not controlled by any object")
    )
    return f"{kind} {meta.get('namespace')}/{meta.get('name')} ({owner})"
