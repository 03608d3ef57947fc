"""Building blocks shared by every kind: bounded scalar types, selectors, references, conditions.

Every string and list is bounded (``max_length``): the API server needs bounds to estimate the
cost of CEL rules, and bounded input is what a multi-tenant control plane should accept anyway.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "asbru.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

_DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DATA_KEY = r"^[-._a-zA-Z0-9]+$"
_QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

DNSLabel = Annotated[str, Field(pattern=_DNS_LABEL, min_length=1, max_length=63)]
DNSSubdomain = Annotated[str, Field(pattern=_DNS_SUBDOMAIN, min_length=1, max_length=253)]
SecretKey = Annotated[str, Field(pattern=_DATA_KEY, min_length=1, max_length=253)]
ModelName = Annotated[str, Field(min_length=1, max_length=256)]
LabelKey = Annotated[str, Field(pattern=_QUALIFIED_NAME, min_length=1, max_length=317)]
LabelValue = Annotated[str, Field(max_length=63)]
LabelMap = Annotated[dict[LabelKey, LabelValue], Field(max_length=64)]
AnnotationMap = Annotated[dict[LabelKey, Annotated[str, Field(max_length=4096)]], Field(max_length=64)]
OpenObject = Annotated[dict[str, Any], Field(max_length=128)]
"""Deliberately schemaless (plugin settings, provider options, affinity): preserve unknown fields."""


def cel_rules(*rules: dict[str, str]) -> JsonDict:
    """``json_schema_extra`` carrying CEL rules (``x-kubernetes-validations``) for a model or field."""
    return {"x-kubernetes-validations": [dict(rule) for rule in rules]}


class CRDModel(BaseModel):
    """Base of every CRD model: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, alias_generator=to_camel, use_enum_values=True
    )


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(CRDModel):
    """One ``matchExpressions`` entry, as in a Kubernetes LabelSelector."""

    key: LabelKey
    operator: SelectorOperator
    values: list[LabelValue] = Field(default_factory=list, max_length=64)


class LabelSelector(CRDModel):
    """A Kubernetes label selector; an empty selector matches everything."""

    match_labels: LabelMap = Field(default_factory=dict)
    match_expressions: list[SelectorRequirement] = Field(default_factory=list, max_length=16)


class SecretKeySelector(CRDModel):
    """A key of a Secret in the same namespace as the referencing object."""

    name: DNSSubdomain = Field(description="Name of the Secret.")
    key: SecretKey = Field(description="Key in the Secret's data.")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CRDModel):
    """A KEP-1623 condition: the state of one aspect of the object, with why and since when."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    reason: Annotated[
        str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    ]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
    observed_generation: int | None = Field(None, ge=0)


Conditions = Annotated[
    list[Condition],
    Field(
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


class BasicStatus(CRDModel):
    """Status of the kinds a gateway consumes (providers, routes, plugins)."""

    observed_generation: int | None = Field(None, ge=0)
    conditions: Conditions = Field(default_factory=list)
