"""Plugin types by id, and building a pipeline from a config's plugin list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.errors import ConfigError
from asbru_gateway.plugins.builtin.telemetry import TelemetryPlugin
from asbru_gateway.plugins.pipeline import Pipeline

PluginFactory = Callable[[str, dict[str, Any]], object]

PLUGIN_TYPES: dict[str, PluginFactory] = {
    "telemetry": TelemetryPlugin,
}


def build_pipeline(config: GatewayConfig) -> Pipeline:
    """One pipeline per config revision; unknown types or bad settings are a ``ConfigError``."""
    plugins = []
    for plugin in sorted(config.plugins, key=lambda p: (p.order, p.name)):
        if not plugin.enabled:
            continue
        factory = PLUGIN_TYPES.get(plugin.type)
        if factory is None:
            known = ", ".join(sorted(PLUGIN_TYPES))
            raise ConfigError(
                f"plugins[{plugin.name}].type: unknown plugin type {plugin.type!r} (known: {known})"
            )
        try:
            plugins.append(factory(plugin.name, dict(plugin.settings)))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"plugins[{plugin.name}].settings: {error}") from None
    return Pipeline(plugins)
