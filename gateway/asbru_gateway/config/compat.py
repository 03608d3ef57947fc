"""How the config contract evolves without breaking a rolling upgrade: schema minor versions.

The rule (README, "Config compatibility"):

- ``schemaVersion`` names the major version (``asbru.dev/v1alpha1``); a gateway refuses any other.
- ``schemaMinor`` counts additive revisions of it: fields added with a default that keeps the old
  behaviour. A field carries the minor that introduced it (``since(n)``); ``schemaMinor`` absent
  means 0, the contract before minors existed.
- A gateway reads a config of its own minor or an older one strictly: an unknown field is an error
  that names it, so a typo never passes silently. A config of a *newer* minor is read leniently:
  fields this gateway does not know are ignored (and logged once), everything it knows is still
  validated. So an old pod keeps serving, and keeps applying changes, while the operator already
  writes the newer schema.
- A writer that knows which minors its readers accept (the operator: pods report theirs on
  ``/readyz``) writes the oldest one they all accept: ``downgraded(config, minor)`` resets the
  newer fields to their defaults, and ``canonical_dump`` leaves out newer fields that hold their
  default, so an old reader sees exactly the fields it knows, and an old and a new reader compute
  the same revision for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator
from pydantic.fields import FieldInfo

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

SINCE_MINOR = "x-asbru-since-minor"
LENIENT = "lenient"
"""Validation context key: True when reading a config of a newer minor (unknown fields are dropped)."""
IGNORED = "ignored"
"""Validation context key: where the names of dropped fields are collected (``Model.field``)."""


class ContractModel(BaseModel):
    """Base of every model of the config contract: frozen, ``extra="forbid"``, and lenient only in a
    config of a newer minor (unknown fields dropped there, at any depth, see ``drop_unknown``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, data: Any, info: ValidationInfo) -> Any:
        """Unknown fields are errors, except in a config of a newer minor."""
        return drop_unknown(cls, data, info)


def since(minor: int) -> dict[str, Any]:
    """``json_schema_extra`` of a field added in schema minor ``minor``."""
    return {SINCE_MINOR: minor}


def field_minor(info: FieldInfo) -> int:
    """The schema minor that introduced a field (0: it was there from the start)."""
    extra = info.json_schema_extra
    return int(extra.get(SINCE_MINOR, 0)) if isinstance(extra, dict) else 0  # type: ignore[arg-type]


def drop_unknown(model: type[BaseModel], data: Any, info: ValidationInfo) -> Any:
    """In a lenient read, ``data`` without the keys ``model`` does not know (recorded in the context)."""
    context = info.context
    if not isinstance(data, Mapping) or not isinstance(context, dict) or not context.get(LENIENT):
        return data
    known = set(model.model_fields)
    known.update(field.alias for field in model.model_fields.values() if field.alias)
    unknown = [key for key in data if key not in known]
    if not unknown:
        return data
    context.setdefault(IGNORED, []).extend(f"{model.__name__}.{key}" for key in unknown)
    return {key: value for key, value in data.items() if key in known}


def report_ignored(source: str, minor: int, own_minor: int, ignored: list[str]) -> None:
    """Log the fields a lenient read dropped, once per distinct set (configs are re-read often)."""
    if ignored:
        _report(source, minor, own_minor, tuple(sorted(set(ignored))))


@lru_cache(maxsize=64)
def _report(source: str, minor: int, own_minor: int, ignored: tuple[str, ...]) -> None:
    log.warning(
        "%s: schemaMinor %d is newer than this gateway's (%d); ignoring fields it does not know: %s",
        source,
        minor,
        own_minor,
        ", ".join(ignored),
    )


def downgraded(model: M, minor: int) -> M:
    """``model`` with every field newer than ``minor`` (at any depth) reset to its default."""
    update: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if field_minor(info) > minor:
            update[name] = info.get_default(call_default_factory=True)
        elif isinstance(value, BaseModel):
            update[name] = downgraded(value, minor)
        elif isinstance(value, tuple) and any(isinstance(item, BaseModel) for item in value):
            update[name] = tuple(
                downgraded(item, minor) if isinstance(item, BaseModel) else item for item in value
            )
    return model.model_copy(update=update)


def canonical_dump(model: BaseModel, minor: int) -> dict[str, Any]:
    """JSON-ready dump by alias, without fields newer than ``minor`` that hold their default."""
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    _strip_newer(model, dumped, minor)
    return dumped


def _strip_newer(model: BaseModel, dumped: dict[str, Any], minor: int) -> None:
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        if field_minor(info) > minor and value == info.get_default(call_default_factory=True):
            dumped.pop(key, None)
        elif isinstance(value, BaseModel):
            _strip_newer(value, dumped[key], minor)
        elif isinstance(value, tuple):
            for item, item_dump in zip(value, dumped[key], strict=True):
                if isinstance(item, BaseModel):
                    _strip_newer(item, item_dump, minor)
