"""Namespace label selectors of credentialScope, as the API server reads a label selector."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cijob.config import OperatorConfig
from cijob.credentials.scope import LabelSelector, everywhere, selects


def selector(**fields: object) -> LabelSelector:
    return LabelSelector.model_validate(fields)


def test_empty_selector_selects_every_namespace() -> None:
    scope = OperatorConfig().credentialScope
    assert everywhere(scope.operatorCredentials) and everywhere(scope.jobCredentialHelpers)
    assert selects(selector(), {})


@pytest.mark.parametrize(
    ("fields", "labels", "expected"),
    [
        ({"matchLabels": {"tier": "trusted"}}, {"tier": "trusted", "x": "y"}, True),
        ({"matchLabels": {"tier": "trusted"}}, {"tier": "other"}, False),
        ({"matchLabels": {"tier": "trusted"}}, {}, False),
        (
            {"matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]},
            {"t": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]},
            {"t": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "t", "operator": "Exists"}]}, {"t": ""}, True),
        ({"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]}, {"t": ""}, False),
    ],
)
def test_selects(fields: dict[str, object], labels: dict[str, str], expected: bool) -> None:
    assert selects(selector(**fields), labels) is expected


def test_bad_selectors_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError):
        selector(matchExpressions=[{"key": "t", "operator": "In"}])
    with pytest.raises(ValidationError):
        selector(matchExpressions=[{"key": "t", "operator": "Exists", "values": ["a"]}])
    with pytest.raises(ValidationError):
        OperatorConfig.model_validate({"credentialScope": {"operators": {}}})
