"""The generated CRD and admission policy: committed copies up to date, structural, documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cijob import api
from cijob.api import crd, policy

CRDS = Path(__file__).resolve().parents[2] / "crds"
Schema = dict[str, Any]


def _schema() -> Schema:
    result: Schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def _nodes(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node, with a JSON-path-like location."""
    yield path or ".", node
    for name, child in (node.get("properties") or {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def _properties(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every named property (what `kubectl explain` lists), at any depth."""
    for where, n in _nodes(node, path):
        for name, child in (n.get("properties") or {}).items():
            yield f"{where.rstrip('.')}.{name}", child


# -- the committed files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(crd.manifests()))
def test_committed_manifest_is_up_to_date(name: str) -> None:
    committed = (CRDS / name).read_text()
    assert committed == crd.manifests()[name], (
        f"crds/{name} is out of date with the pydantic models in operator/cijob/api: "
        "run `make crds` and commit the result"
    )


def test_no_stray_files_in_crds() -> None:
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(crd.manifests())


def test_manifests_are_yaml_of_the_objects() -> None:
    manifests = crd.manifests()
    assert manifests["cijob.dev_cijobs.yaml"].startswith("# Generated")
    assert yaml.safe_load(manifests["cijob.dev_cijobs.yaml"]) == crd.crd()
    docs = list(yaml.safe_load_all(manifests["cijob.dev_validation.yaml"]))
    assert docs == [policy.policy(), policy.binding()]


# -- names -----------------------------------------------------------------------------------


def test_names() -> None:
    doc = crd.crd()
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["metadata"]["name"] == "cijobs.cijob.dev"
    spec = doc["spec"]
    assert spec["group"] == "cijob.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "CiJob"
    assert spec["names"]["plural"] == "cijobs"
    assert spec["names"]["singular"] == "cijob"
    assert spec["names"]["shortNames"] == ["cij"]
    [version] = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}
    assert api.API_VERSION == "cijob.dev/v1alpha1"


def test_printer_columns() -> None:
    columns = crd.crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    by_name = {c["name"]: c for c in columns}
    expected = {
        "Phase": (".status.phase", "string"),
        "Reason": (".status.reason", "string"),
        "Exit": (".status.exitCode", "integer"),
        "Image": (".status.images[0].image", "string"),
        "Commit": (".status.shortCommit", "string"),
        "Age": (".metadata.creationTimestamp", "date"),
    }
    for name, (json_path, type_) in expected.items():
        assert name in by_name, f"no {name} column"
        assert by_name[name]["jsonPath"] == json_path
        assert by_name[name]["type"] == type_
        # Shown by a plain `kubectl get cijobs`, not only with -o wide.
        assert by_name[name].get("priority", 0) == 0
    shown = [c["name"] for c in columns if c.get("priority", 0) == 0]
    assert shown == ["Phase", "Reason", "Exit", "Image", "Commit", "Age"]


# -- structural schema -----------------------------------------------------------------------


def test_every_property_has_a_description() -> None:
    walked = dict(_properties(_schema()))
    assert {".spec.image", ".spec.services", ".spec.retry.max", ".status.conditions[].type"} <= set(
        walked
    )
    missing = [
        where
        for where, node in _properties(_schema())
        # The API server replaces `metadata` by ObjectMeta, with its own documentation.
        if where != ".metadata" and not (node.get("description") or "").strip()
    ]
    assert missing == []


def test_object_items_have_descriptions() -> None:
    missing = [
        where
        for where, node in _nodes(_schema())
        if where.endswith("[]") and node.get("type") == "object" and not node.get("description")
    ]
    assert missing == []


def test_union_fields_are_untyped_and_documented() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    image = spec["image"]
    assert image.get("x-kubernetes-preserve-unknown-fields") is True
    assert "type" not in image
    assert "image" in image["description"] and "entrypoint" in image["description"]
    services = spec["services"]
    assert services["type"] == "array"
    assert services["items"].get("x-kubernetes-preserve-unknown-fields") is True
    assert services["description"].strip()


@pytest.mark.parametrize("keyword", ["anyOf", "oneOf", "allOf", "$ref", "$defs", "title", "const"])
def test_no_non_structural_keywords(keyword: str) -> None:
    found = [where for where, node in _nodes(_schema()) if keyword in node]
    assert found == []


def test_no_additional_properties_beside_properties() -> None:
    found = [
        where
        for where, node in _nodes(_schema())
        if "properties" in node and "additionalProperties" in node
    ]
    assert found == []


def test_additional_properties_is_never_false() -> None:
    found = [
        where for where, node in _nodes(_schema()) if node.get("additionalProperties") is False
    ]
    assert found == []


def test_every_node_has_a_type_unless_it_preserves_unknown_fields() -> None:
    untyped = [
        where
        for where, node in _nodes(_schema())
        if "type" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and not node.get("x-kubernetes-int-or-string")
    ]
    assert untyped == []


def test_enums_are_typed_strings() -> None:
    for where, node in _nodes(_schema()):
        if "enum" in node:
            assert node["type"] == "string", where


def test_required_fields() -> None:
    schema = _schema()
    assert schema["required"] == ["spec"]
    assert schema["properties"]["spec"]["required"] == ["script"]
    assert schema["properties"]["spec"]["properties"]["script"]["minItems"] == 1


def test_validation_rules_have_messages() -> None:
    for where, node in _nodes(_schema()):
        for rule in node.get("x-kubernetes-validations") or []:
            assert rule["rule"].strip(), where
            assert rule["message"].strip(), where


def test_spec_and_status_schemas() -> None:
    props = _schema()["properties"]
    assert props["spec"]["type"] == "object"
    assert props["status"]["type"] == "object"
    status = props["status"]["properties"]
    assert status["phase"]["enum"] == ["Pending", "Running", "Succeeded", "Failed", "Canceled"]
    assert "observedGeneration" in status["conditions"]["items"]["properties"]
    assert status["images"]["items"]["properties"].keys() >= {"container", "image", "imageID"}
    retry = props["spec"]["properties"]["retry"]["properties"]
    assert (retry["max"]["minimum"], retry["max"]["maximum"]) == (0, 2)


# -- the admission policy --------------------------------------------------------------------


def test_policy_targets_cijobs() -> None:
    doc = policy.policy()
    assert doc["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert doc["kind"] == "ValidatingAdmissionPolicy"
    assert doc["spec"]["failurePolicy"] == "Fail"
    [rule] = doc["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["cijob.dev"]
    assert rule["resources"] == ["cijobs"]
    assert set(rule["operations"]) >= {"CREATE", "UPDATE"}
    assert doc["spec"]["validations"]
    for v in doc["spec"]["validations"]:
        assert v["expression"].strip()
        assert v["message"].strip()


def test_binding_denies_with_the_policy() -> None:
    doc = policy.binding()
    assert doc["kind"] == "ValidatingAdmissionPolicyBinding"
    assert doc["spec"]["policyName"] == policy.policy()["metadata"]["name"]
    assert doc["spec"]["validationActions"] == ["Deny"]
