"""Provider types: one dict from provider type id to what it takes to talk to that provider.

No hub with ``if provider == ...`` anywhere: routing, pools and the API look a type up here once,
when a config is applied. The OpenAI-compatible family is data (``openai_compatible.py``), not code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.providers import openai_compatible
from asbru_gateway.providers.anthropic.translator import AnthropicTranslator
from asbru_gateway.providers.azure.translator import AzureTranslator
from asbru_gateway.providers.base import Translator
from asbru_gateway.providers.echo.transport import EchoClient
from asbru_gateway.providers.gemini.translator import GeminiTranslator
from asbru_gateway.providers.openai.native import OpenAINativeTranslator
from asbru_gateway.providers.openai.translator import OpenAITranslator
from asbru_gateway.providers.transport import UpstreamClient


@dataclass(frozen=True, slots=True)
class ProviderType:
    """How to reach one kind of provider. ``make_client`` None means the shared aiohttp path."""

    id: str
    make_translator: Callable[[ProviderConfig], Translator]
    default_base_url: str | None = None
    key_env: str | None = None
    """Environment variable the embedded default config reads a key from (``OPENAI_API_KEY``)."""
    base_url_env: str | None = None
    """Environment variable that overrides the base URL in the embedded default (``OPENAI_BASE_URL``)."""
    needs_key: bool = True
    make_client: Callable[[ProviderConfig], UpstreamClient] | None = None


def _openai(config: ProviderConfig) -> Translator:
    return OpenAITranslator(stream_usage=bool(config.options.get("stream_usage", True)))


def _openai_native(config: ProviderConfig) -> Translator:
    return OpenAINativeTranslator(stream_usage=bool(config.options.get("stream_usage", True)))


PROVIDER_TYPES: dict[str, ProviderType] = {
    "anthropic": ProviderType(
        "anthropic",
        AnthropicTranslator,
        default_base_url="https://api.anthropic.com/v1",
        key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
    ),
    "gemini": ProviderType(
        "gemini",
        GeminiTranslator,
        default_base_url="https://generativelanguage.googleapis.com/v1beta",
        key_env="GEMINI_API_KEY",
        base_url_env="GEMINI_BASE_URL",
    ),
    "azure": ProviderType(
        "azure",
        AzureTranslator,
        key_env="AZURE_OPENAI_API_KEY",
        base_url_env="AZURE_OPENAI_ENDPOINT",
    ),
    "echo": ProviderType(
        "echo", _openai, default_base_url="echo://local", needs_key=False, make_client=EchoClient
    ),
    **{
        preset.id: ProviderType(
            preset.id,
            _openai,
            default_base_url=preset.base_url,
            key_env=preset.key_env,
            base_url_env=preset.base_url_env,
            needs_key=preset.needs_key,
        )
        for preset in openai_compatible.PRESETS
    },
}
# OpenAI's own API also takes Responses and legacy Completions bodies as they are (pass-through);
# the compatible servers may lack those endpoints, so requests to them are translated to chat.
PROVIDER_TYPES["openai"] = replace(PROVIDER_TYPES["openai"], make_translator=_openai_native)


def provider_type(type_id: str) -> ProviderType:
    """The registered type, or a ``KeyError`` naming the known ones (config validation uses it)."""
    try:
        return PROVIDER_TYPES[type_id]
    except KeyError:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise KeyError(f"unknown provider type {type_id!r} (known: {known})") from None
