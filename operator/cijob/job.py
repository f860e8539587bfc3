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


# pydantic tries each member of a union and names the member in the error path
_UNION_MEMBERS = frozenset({"str", "int", "float", "ImageSpec", "ServiceSpec"})


def _most_specific(errors: list[Any]) -> Any:
    """For a map given where a string or a map is allowed, the error inside the map."""
    for error in errors:
        loc = error["loc"]
        # an error on the member itself says only that the input was not a map
        inside = any(p in {"ImageSpec", "ServiceSpec"} for p in loc[:-1])
        if inside:
            return error
    return errors[0]


def parse_spec(spec: Mapping[str, Any]) -> CiJobSpec:
    """Validates a spec the API server let through; InvalidSpec names the first bad field."""
    try:
        return CiJobSpec.model_validate(dict(spec))
    except ValidationError as exc:
        error = _most_specific(exc.errors())
        loc = tuple(p for p in error["loc"] if p not in _UNION_MEMBERS)
        raise InvalidSpec(f"{_location(loc)}: {error['msg']}") from None


def job_from_body(body: Mapping[str, Any]) -> Job:
    meta = body.get("metadata", {})
    return Job(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 1) or 1),
        spec=parse_spec(body.get("spec") or {}),
    )
