"""Plugin types by id, and building one revision's plugin set, reusing unchanged instances.

The operator validates LLMPlugin CRs with ``settings_error`` against the same registry, so a typo
is caught before a config is rendered, with the same message the gateway would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from asbru_gateway.config.model import GatewayConfig, PluginConfig
from asbru_gateway.errors import ConfigError
from asbru_gateway.plugins.builtin.telemetry import TelemetryPlugin
from asbru_gateway.plugins.pipeline import Pipeline

PLUGIN_TYPES: dict[str, Any] = {
    "telemetry": TelemetryPlugin,
}
"""Type id -> plugin class. A class takes ``(name, settings)`` and declares ``Settings``."""


@dataclass(frozen=True)
class PluginSet:
    """One revision's plugins: the pipeline, and each instance under its fingerprint."""

    pipeline: Pipeline
    instances: dict[str, tuple[str, object]] = field(default_factory=dict)
    """Plugin name -> (fingerprint of type + settings, instance)."""


def settings_error(plugin_type: str, settings: dict[str, Any]) -> str | None:
    """Why ``settings`` are not valid for ``plugin_type`` (one readable line), or None."""
    try:
        _validated(plugin_type, settings)
    except ConfigError as error:
        return error.message
    return None


def _validated(plugin_type: str, settings: dict[str, Any], where: str = "settings") -> BaseModel:
    cls = PLUGIN_TYPES.get(plugin_type)
    if cls is None:
        known = ", ".join(sorted(PLUGIN_TYPES))
        raise ConfigError(f"unknown plugin type {plugin_type!r} (known: {known})")
    model: type[BaseModel] = cls.Settings
    try:
        return model.model_validate(settings)
    except ValidationError as error:
        problems = "; ".join(
            f"{where}.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise ConfigError(problems) from None


def build_plugins(config: GatewayConfig, previous: PluginSet | None) -> tuple[PluginSet, list[object]]:
    """The next plugin set and the instances it creates (to be started before it serves).

    Instances whose name, type and settings are unchanged are taken over from ``previous``.
    Raises ``ConfigError`` naming the plugin and field; nothing is created then.
    """
    old = previous.instances if previous else {}
    instances: dict[str, tuple[str, object]] = {}
    created: list[object] = []
    ordered: list[object] = []
    for plugin in sorted(config.plugins, key=lambda p: (p.order, p.name)):
        if not plugin.enabled:
            continue
        fingerprint, settings = _fingerprint(plugin)
        kept = old.get(plugin.name)
        if kept is not None and kept[0] == fingerprint:
            instance = kept[1]
        else:
            instance = PLUGIN_TYPES[plugin.type](plugin.name, settings)
            created.append(instance)
        instances[plugin.name] = (fingerprint, instance)
        ordered.append(instance)
    return PluginSet(Pipeline(ordered), instances), created


def retired_plugins(previous: PluginSet | None, current: PluginSet) -> list[object]:
    """Instances of ``previous`` that ``current`` no longer uses (to be stopped once drained)."""
    if previous is None:
        return []
    kept = {id(instance) for _, instance in current.instances.values()}
    return [instance for _, instance in previous.instances.values() if id(instance) not in kept]


def _fingerprint(plugin: PluginConfig) -> tuple[str, BaseModel]:
    try:
        settings = _validated(plugin.type, dict(plugin.settings), where=f"plugins[{plugin.name}].settings")
    except ConfigError as error:
        message = error.message
        if message.startswith("unknown plugin type"):
            message = f"plugins[{plugin.name}].type: {message}"
        raise ConfigError(message) from None
    canonical = orjson.dumps(settings.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return f"{plugin.type}:{canonical.decode()}", settings
