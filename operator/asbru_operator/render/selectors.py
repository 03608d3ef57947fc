"""Kubernetes label-selector semantics, evaluated locally.

The operator filters selected objects itself rather than trusting a server-side selector, which
keeps the renderers pure (and works against API emulators that ignore ``labelSelector``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asbru_operator.crd_models.common import LabelSelector, SelectorOperator


def matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector``; ``None`` or an empty selector matches everything."""
    if selector is None:
        return True
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        operator = SelectorOperator(requirement.operator)
        if operator is SelectorOperator.IN and value not in requirement.values:
            return False
        if operator is SelectorOperator.NOT_IN and present and value in requirement.values:
            return False
        if operator is SelectorOperator.EXISTS and not present:
            return False
        if operator is SelectorOperator.DOES_NOT_EXIST and present:
            return False
    return True


def labels_of(body: Mapping[str, Any]) -> dict[str, str]:
    """An object's labels (empty when it has none)."""
    return dict(body.get("metadata", {}).get("labels") or {})


def selector_string(labels: Mapping[str, str]) -> str:
    """``a=b,c=d`` for a ``labelSelector`` query or a scale subresource's ``status.selector``."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))
