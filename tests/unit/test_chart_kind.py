"""kind-config.yaml: a local cluster the chart installs into, with native sidecars."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
NODE_IMAGE = re.compile(r"kindest/node:v(\d+\.\d+\.\d+)(@sha256:[0-9a-f]{64})?")


def kind_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    return data


def test_one_control_plane_and_one_worker() -> None:
    config = kind_config()
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker"]


def test_node_image_has_native_sidecars_and_is_pinned() -> None:
    images = {n["image"] for n in kind_config()["nodes"]}
    assert len(images) == 1, "every node runs the same Kubernetes"
    image = images.pop()
    m = NODE_IMAGE.fullmatch(image)
    assert m, f"{image} is not kindest/node:v<version>[@sha256:<digest>]"
    assert m[2], "kind's release notes ask for node images pinned by digest"
    version = Version(m[1])
    assert version >= Version("1.29"), "native sidecars (restartPolicy: Always init containers)"
    # The chart's own floor (ValidatingAdmissionPolicy v1).
    chart = yaml.safe_load((REPO / "charts" / "cijob-operator" / "Chart.yaml").read_text())
    floor = chart["kubeVersion"].replace("-0", "")
    assert version in SpecifierSet(floor), f"{version} does not satisfy the chart's {floor}"
