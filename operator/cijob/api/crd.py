"""Generates the CiJob CustomResourceDefinition from the pydantic models."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from cijob import api
from cijob.api import rules
from cijob.api.spec import CiJobSpec
from cijob.api.status import CiJobStatus

Schema = dict[str, Any]

# Keys of JSON Schema that a structural OpenAPI v3 schema does not take.
_DROPPED = {"title", "default", "$defs"}


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)
        return target
    return node


def _without_null(options: list[Schema]) -> list[Schema]:
    return [o for o in options if o.get("type") != "null"]


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Turns one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if node.get("x-cijob-union"):
        return _union(node)
    if "anyOf" in node:
        options = _without_null(node["anyOf"])
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("x-kubernetes-int-or-string"):
            return _clean(rest)
        if len(options) == 1:
            merged = _resolve(options[0], defs)
            merged = {**merged, **{k: v for k, v in rest.items() if k != "description"}}
            if "description" in rest:
                merged["description"] = rest["description"]
            return _convert(merged, defs)
        raise ValueError(f"union without a structural form: {node}")
    out = _clean(node)
    if "properties" in out:
        # extra="forbid" gives additionalProperties: false, which a structural schema
        # forbids beside properties; pruning drops unknown fields instead.
        out.pop("additionalProperties", None)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "object" and "properties" in out:
        out["properties"] = {k: _convert(v, defs) for k, v in out["properties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _convert(out["additionalProperties"], defs)
    if out.get("type") == "array":
        if out.pop("x-cijob-items-union", False):
            out["items"] = _union({})
        else:
            out["items"] = _convert(out["items"], defs)
    return out


def _union(node: Schema) -> Schema:
    """A string-or-map field: a structural schema cannot type it, and CRD rules cannot see
    untyped fields, so the ValidatingAdmissionPolicy of cijob.api.policy checks it."""
    out: Schema = {"x-kubernetes-preserve-unknown-fields": True}
    if "description" in node:
        out["description"] = node["description"]
    return out


def _clean(node: Schema) -> Schema:
    return {k: v for k, v in node.items() if k not in _DROPPED and k != "x-cijob-union"}


def _root_schema(model: type[CiJobSpec] | type[CiJobStatus]) -> Schema:
    raw = model.model_json_schema(ref_template="#/$defs/{model}")
    defs = raw.get("$defs", {})
    return _convert(raw, defs)


def openapi_schema() -> Schema:
    """The `openAPIV3Schema` of the CiJob kind."""
    return {
        "type": "object",
        "description": "A CI job run as a pod: what .gitlab-ci.yml says of one job.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version: cijob.dev/v1alpha1."},
            "kind": {"type": "string", "description": "Kind: CiJob."},
            "metadata": {"type": "object"},
            "spec": _root_schema(CiJobSpec),
            "status": _root_schema(CiJobStatus),
        },
        "x-kubernetes-validations": rules.root_rules(),
    }


def crd() -> Schema:
    """The whole CustomResourceDefinition manifest."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "cijob-operator"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": api.SHORT_NAMES,
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
                        {"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode"},
                        {
                            "name": "Attempt",
                            "type": "integer",
                            "jsonPath": ".status.attempt",
                            "priority": 1,
                        },
                        {"name": "Image", "type": "string", "jsonPath": ".status.images[0].image"},
                        {"name": "Commit", "type": "string", "jsonPath": ".status.shortCommit"},
                        {
                            "name": "Pod",
                            "type": "string",
                            "jsonPath": ".status.podName",
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


HEADER = "# Generated by `cijob crd` from the pydantic models in operator/cijob/api; do not edit.\n"


def crd_yaml() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100)


def manifests() -> dict[str, str]:
    """Every file of `crds/`, by name: the CRD and the admission policy that completes it."""
    from cijob.api import policy

    validation = [policy.policy(), policy.binding()]
    return {
        "cijob.dev_cijobs.yaml": crd_yaml(),
        "cijob.dev_validation.yaml": HEADER
        + yaml.safe_dump_all(validation, sort_keys=False, width=100),
    }
