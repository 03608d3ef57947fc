"""Everything one provider needs at run time, built once per provider config (or key) change.

A ``ProviderRuntime`` joins the provider's config, its translator, its upstream client (one
connection pool), its resolved keys and its bounded pool. Its ``fingerprint`` covers the config
and the key *values*, so a rotated key builds a new runtime while an unchanged provider keeps
its pool, its connections and its in-flight work across a reload.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from asbru_gateway.config.model import KeyConfig, ProviderConfig
from asbru_gateway.config.secrets import SecretResolver, SecretValue
from asbru_gateway.errors import ConfigError
from asbru_gateway.pool.bounded import BoundedPool
from asbru_gateway.providers.base import EmbeddingsTranslator, NativeTranslator, Translator
from asbru_gateway.providers.registry import provider_type
from asbru_gateway.providers.transport import AiohttpClient, UpstreamClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    name: str
    value: SecretValue
    weight: float
    models: frozenset[str]
    exclude_models: frozenset[str]

    def allows(self, model: str) -> bool:
        if self.models and model not in self.models:
            return False
        return model not in self.exclude_models


class ProviderRuntime:
    """One provider, ready to take requests. Replaced (never mutated) when its config changes."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        base_url: str,
        translator: Translator,
        client: UpstreamClient,
        keys: tuple[ResolvedKey, ...],
        fingerprint: str,
    ) -> None:
        self.name = config.name
        self.config = config
        self.base_url = base_url
        self.translator = translator
        self.client = client
        self.keys = keys
        self.fingerprint = fingerprint
        self.pool = BoundedPool(config.name, config.pool)
        # Optional capabilities, checked once here (a runtime_checkable isinstance costs ~2 us).
        self.embedder = translator if isinstance(translator, EmbeddingsTranslator) else None
        self.native: NativeTranslator | None = (
            translator if isinstance(translator, NativeTranslator) else None
        )
        self.native_formats: frozenset[str] = self.native.native_formats if self.native else frozenset()
        self.key_cache: dict[str, tuple[tuple[ResolvedKey, ...], tuple[float, ...]]] = {}

    async def drain_and_close(self, grace_s: float) -> None:
        """Retire the pool, let in-flight calls and streams finish (up to ``grace_s``), then close."""
        self.pool.retire()
        if not await self.pool.wait_idle(grace_s):
            log.warning(
                "provider %s: %d requests still running after the %.0f s drain timeout; closing",
                self.name,
                self.pool.in_flight,
                grace_s,
            )
        await self.client.close()


def build_runtime(config: ProviderConfig, resolver: SecretResolver) -> ProviderRuntime:
    """Resolve keys and build translator, client and pool. Raises ``ConfigError`` naming the field."""
    where = f"providers[{config.name}]"
    try:
        kind = provider_type(config.type)
    except KeyError as error:
        raise ConfigError(f"{where}.type: {error.args[0]}") from None
    base_url = config.base_url or kind.default_base_url
    if not base_url:
        raise ConfigError(f"{where}.base_url: required for provider type {config.type!r}")
    if kind.needs_key and not config.keys:
        raise ConfigError(f"{where}.keys: provider type {config.type!r} needs at least one key")
    keys = tuple(_resolve_key(where, key, resolver) for key in config.keys)
    fingerprint = _fingerprint(config, keys)
    client = kind.make_client(config) if kind.make_client else AiohttpClient(config)
    return ProviderRuntime(
        config,
        base_url=base_url,
        translator=kind.make_translator(config),
        client=client,
        keys=keys,
        fingerprint=fingerprint,
    )


def _resolve_key(where: str, key: KeyConfig, resolver: SecretResolver) -> ResolvedKey:
    try:
        value = resolver.resolve(key.secret)
    except ConfigError as error:
        raise ConfigError(f"{where}.keys[{key.name}].secret: {error.message}") from None
    return ResolvedKey(key.name, value, key.weight, frozenset(key.models), frozenset(key.exclude_models))


def _fingerprint(config: ProviderConfig, keys: tuple[ResolvedKey, ...]) -> str:
    hasher = hashlib.sha256(config.model_dump_json().encode())
    for key in keys:
        hasher.update(b"\0" + key.name.encode() + b"\0" + key.value.reveal().encode())
    return hasher.hexdigest()


def fingerprint_of(config: ProviderConfig, resolver: SecretResolver) -> str | None:
    """The fingerprint a runtime for ``config`` would have, or None if its keys do not resolve."""
    try:
        keys = tuple(_resolve_key(config.name, key, resolver) for key in config.keys)
    except ConfigError:
        return None
    return _fingerprint(config, keys)
