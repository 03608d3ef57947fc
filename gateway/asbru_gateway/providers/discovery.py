"""The embedded default config: ``echo`` always, plus every provider whose key is in the environment.

So ``asbru serve`` with no config serves ``echo/<anything>`` offline at once, and with
``OPENAI_API_KEY`` (and optionally ``OPENAI_BASE_URL``) set it also serves ``openai/<model>``.
Keys stay references (``env:OPENAI_API_KEY``): the config never holds a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asbru_gateway.config.loader import parse_config
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.providers.registry import PROVIDER_TYPES


def default_config(environ: Mapping[str, str]) -> GatewayConfig:
    providers: list[dict[str, Any]] = [
        {
            "name": "echo",
            "type": "echo",
            "models": ["echo"],
            "options": {"latency_ms": float(environ.get("ASBRU_ECHO_LATENCY_MS", "0"))},
        }
    ]
    for kind in sorted(PROVIDER_TYPES.values(), key=lambda k: k.id):
        if not kind.key_env or not environ.get(kind.key_env):
            continue
        provider: dict[str, Any] = {
            "name": kind.id,
            "type": kind.id,
            "keys": [{"name": "env", "secret": f"env:{kind.key_env}"}],
        }
        base_url = environ.get(kind.base_url_env) if kind.base_url_env else None
        if base_url:
            provider["base_url"] = base_url
        elif not kind.default_base_url:
            continue  # e.g. Azure: a key without an endpoint is not usable
        providers.append(provider)
    plugins = [{"name": "telemetry", "type": "telemetry", "order": -100}]
    return parse_config({"providers": providers, "plugins": plugins}, source="embedded default")
