"""Which namespaces get the operator's own credentials and may run credential helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelSelectorRequirement(_Model):
    """One `matchExpressions` entry of a Kubernetes label selector."""

    key: str = Field(min_length=1, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = Field(
        default_factory=list, description="Values for In and NotIn; empty for the others."
    )

    @model_validator(mode="after")
    def _values_fit(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_Model):
    """A Kubernetes label selector; the empty selector selects every namespace."""

    matchLabels: dict[str, str] = Field(
        default_factory=dict, description="Labels the namespace must have, with these values."
    )
    matchExpressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Requirements the namespace's labels must meet."
    )


class CredentialScope(_Model):
    """Where credentials that are not the job's own may be used, by namespace labels."""

    operatorCredentials: LabelSelector = Field(
        default_factory=LabelSelector,
        description="Namespaces whose jobs get the operator's DOCKER_AUTH_CONFIG environment "
        "variable and $HOME/.docker/config.json; all namespaces when empty.",
    )
    jobCredentialHelpers: LabelSelector = Field(
        default_factory=LabelSelector,
        description="Namespaces whose jobs' own credsStore/credHelpers entries the operator "
        "runs (with its own identity); all namespaces when empty.",
    )


def everywhere(selector: LabelSelector) -> bool:
    return not selector.matchLabels and not selector.matchExpressions


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether `labels` (a namespace's) meet `selector`, as the API server decides it."""
    if any(labels.get(k) != v for k, v in selector.matchLabels.items()):
        return False
    for req in selector.matchExpressions:
        present = req.key in labels
        if req.operator == "In" and not (present and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True
