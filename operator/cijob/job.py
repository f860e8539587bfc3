"""A CiJob object read into plain, validated data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cijob import api
from cijob.api.spec import CiJobSpec
from cijob.errors import InvalidSpec


@dataclass(frozen=True)
class Job:
    """The parts of a CiJob the operator decides from."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: CiJobSpec

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def _location(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_spec(spec: Mapping[str, Any]) -> CiJobSpec:
    """Validates a spec the API server let through; InvalidSpec names the first bad field."""
    try:
        return CiJobSpec.model_validate(dict(spec))
    except ValidationError as exc:
        first = exc.errors()[0]
        # pydantic tries each member of a union: drop the member names it adds to the path
        loc = tuple(p for p in first["loc"] if p not in {"str", "ImageSpec", "ServiceSpec"})
        raise InvalidSpec(f"{_location(loc)}: {first['msg']}") from None


def job_from_body(body: Mapping[str, Any]) -> Job:
    meta = body.get("metadata", {})
    return Job(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 1) or 1),
        spec=parse_spec(body.get("spec") or {}),
    )
