"""The simulated node takes only pods a scheduler could put on it."""

from __future__ import annotations

from typing import Any

import pytest

from testground.kubesim import fits

LABELS = {"kubernetes.io/hostname": "cijob-sim-node", "kubernetes.io/os": "linux"}


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
            }
        }
    }


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, True),
        ({"nodeSelector": {"kubernetes.io/os": "linux"}}, True),
        ({"nodeSelector": {"kubernetes.io/hostname": "cijob-realnode"}}, False),
        (_required(_expr("kubernetes.io/os", "In", "linux", "windows")), True),
        (_required(_expr("kubernetes.io/os", "NotIn", "linux")), False),
        (_required(_expr("gpu", "Exists")), False),
        (_required(_expr("gpu", "DoesNotExist")), True),
        # Terms are ORed: one that fits is enough.
        (_required(_expr("gpu", "Exists"), _expr("kubernetes.io/os", "In", "linux")), True),
        (
            _required(
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["x"]}]}
            ),
            False,
        ),
    ],
)
def test_kubesim_node_filters(spec: dict[str, Any], expected: bool) -> None:
    assert fits(spec, LABELS) is expected
