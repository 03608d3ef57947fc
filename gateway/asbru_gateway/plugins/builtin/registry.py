"""Plugin types by id, and building one revision's plugin set, reusing unchanged instances.

The operator validates LLMPlugin CRs with ``settings_error`` against the same registry, so a typo
is caught before a config is rendered, with the same message the gateway would give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from asbru_gateway.config.model import GatewayConfig, PluginConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.errors import ConfigError
from asbru_gateway.plugins.builtin.governance import NAME as GOVERNANCE
from asbru_gateway.plugins.builtin.governance import governance_plugin
from asbru_gateway.plugins.builtin.telemetry import TelemetryPlugin
from asbru_gateway.plugins.pipeline import Pipeline

PLUGIN_TYPES: dict[str, Any] = {
    "telemetry": TelemetryPlugin,
}
"""Type id -> plugin class. A class takes ``(name, settings)`` and declares ``Settings``.
(``governance`` is not here: it is declared by the config's own section, see ``build_plugins``.)"""
Factory = Callable[[object | None], object]
"""Builds an instance, given the instance of the same name it replaces (or None)."""


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


def build_plugins(
    config: GatewayConfig, previous: PluginSet | None, resolver: SecretResolver | None = None
) -> tuple[PluginSet, list[object]]:
    """The next plugin set and the instances it creates (to be started before it serves).

    Instances whose name, type and settings are unchanged are taken over from ``previous``; a
    changed one is built with the instance it replaces at hand (governance takes over its counter
    store). Raises ``ConfigError`` naming the plugin and field; nothing is created then.
    """
    old = previous.instances if previous else {}
    specs: list[tuple[int, str, str, Factory]] = []
    for plugin in config.plugins:
        if plugin.enabled:
            fingerprint, settings = _fingerprint(plugin)
            specs.append(
                (plugin.order, plugin.name, fingerprint, _factory(plugin.type, plugin.name, settings))
            )
    if config.governance is not None:
        if any(plugin.name == GOVERNANCE for plugin in config.plugins):
            raise ConfigError(f"plugins[{GOVERNANCE}]: the name is taken by the governance section")
        fingerprint, factory = governance_plugin(config, resolver or SecretResolver())
        specs.append((config.governance.order, GOVERNANCE, fingerprint, factory))
    instances: dict[str, tuple[str, object]] = {}
    created: list[object] = []
    ordered: list[object] = []
    for _, name, fingerprint, make in sorted(specs, key=lambda spec: (spec[0], spec[1])):
        kept = old.get(name)
        if kept is not None and kept[0] == fingerprint:
            instance = kept[1]
        else:
            instance = make(kept[1] if kept is not None else None)
            created.append(instance)
        instances[name] = (fingerprint, instance)
        ordered.append(instance)
    return PluginSet(Pipeline(ordered), instances), created


def _factory(plugin_type: str, name: str, settings: BaseModel) -> Factory:
    return lambda _previous: PLUGIN_TYPES[plugin_type](name, settings)


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
