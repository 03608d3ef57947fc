"""From the config's ``governance`` section to what requests read: keys, limits, prices, names.

Runs once per config revision (never per request). Secret references are resolved here, and a key's
value is hashed at once and dropped: nothing downstream holds it. ``fingerprint`` covers everything
the compiled form depends on (resolved values by hash only), so an unchanged revision keeps its
plugin instance and a rotated key (same config, new value in a file or Secret) does not.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from asbru_gateway.config.governance import GovernanceConfig, RedisConfig, VirtualKeyConfig
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.core.formats import FAMILY_TYPES
from asbru_gateway.core.identity import MCP_ATTRIBUTE, Identity
from asbru_gateway.errors import ConfigError
from asbru_gateway.governance import limits as lim
from asbru_gateway.governance.headers import policy_header
from asbru_gateway.governance.keys import KeyEntry, KeyTable, Permissions, key_hash, parse_hash
from asbru_gateway.governance.pricing import PriceBook
from asbru_gateway.governance.redis_store import resolve

PROCESS_SALT = os.urandom(16)
"""Salt for key values read from env/file references: made per process, never leaves memory."""


@dataclass(frozen=True)
class Names:
    """How a client's model name resolves to a route and providers (``routing.plan``'s rules)."""

    routes: dict[str, tuple[str, ...]]
    first_targets: dict[str, tuple[str, str]]
    """Route -> its first target (provider, model): what a reservation is priced at."""
    providers: frozenset[str]
    by_type: dict[str, str]
    families: dict[str, str]

    def resolve(self, model: str, family: str | None) -> tuple[str | None, tuple[str, ...]]:
        """(route name or None, providers it may reach); no providers when the name is unknown."""
        route = self.routes.get(model)
        if route is not None:
            return model, route
        target = self.priced_as(model, family)
        return None, (target[0],) if target is not None else ()

    def priced_as(self, model: str, family: str | None) -> tuple[str, str] | None:
        """The (provider, upstream model) a request to ``model`` most likely goes to, for pricing."""
        first = self.first_targets.get(model)
        if first is not None:
            return first
        prefix, slash, rest = model.partition("/")
        if slash and rest:
            provider = prefix if prefix in self.providers else self.by_type.get(prefix)
            if provider is not None:
                return provider, rest
        if family is not None and family in self.families:
            return self.families[family], model
        return None


@dataclass(frozen=True)
class Compiled:
    config: GovernanceConfig
    keys: KeyTable
    provider_limits: dict[str, tuple[lim.Limit, ...]]
    team_limits: dict[str, tuple[lim.Limit, ...]]
    prices: PriceBook
    names: Names
    redis: tuple[RedisConfig, str, str | None] | None
    fingerprint: str
    secrets: list[str] = field(default_factory=list, repr=False)
    """Resolved values to mask in logs (the Redis URL and password)."""


def compile_governance(config: GatewayConfig, resolver: SecretResolver) -> Compiled:
    """Raises ``ConfigError`` naming the key or field that cannot be served."""
    governance = config.governance
    assert governance is not None
    hasher = hashlib.sha256(orjson.dumps(config.model_dump(mode="json", include={"governance", "routes"})))
    team_limits = {
        team.name: tuple(
            lim.rate_limits(f"team/{team.name}", team.rate_limits)
            + lim.budgets(f"team/{team.name}", team.budgets)
        )
        for team in governance.teams
    }
    keys = KeyTable()
    for key in governance.virtual_keys:
        salt, digest = _hash_of(key, resolver)
        hasher.update(salt + digest)
        keys.add(_entry(key, team_limits), salt, digest)
    redis = None
    secrets: list[str] = []
    if governance.redis is not None:
        try:
            url, password = resolve(governance.redis, resolver)
        except ConfigError as error:
            raise ConfigError(f"governance.redis: {error.message}") from None
        redis = (governance.redis, url, password)
        secrets = [url, password] if password else [url]
        hasher.update(("\0".join(secrets)).encode())
    provider_types = {provider.name: provider.type for provider in config.providers}
    return Compiled(
        config=governance,
        keys=keys,
        provider_limits={
            entry.provider: tuple(lim.budgets(f"provider/{entry.provider}", entry.budgets))
            for entry in governance.provider_budgets
        },
        team_limits=team_limits,
        prices=PriceBook(governance.prices, provider_types),
        names=_names(config),
        redis=redis,
        fingerprint="governance:" + hasher.hexdigest()[:24],
        secrets=secrets,
    )


def _hash_of(key: VirtualKeyConfig, resolver: SecretResolver) -> tuple[bytes, bytes]:
    if key.hash is not None:
        return parse_hash(key.hash)
    assert key.secret is not None
    try:
        value = resolver.resolve(key.secret).reveal()
    except ConfigError as error:
        raise ConfigError(f"governance.virtual_keys[{key.name}].secret: {error.message}") from None
    return PROCESS_SALT, key_hash(PROCESS_SALT, value)


def _entry(key: VirtualKeyConfig, team_limits: dict[str, tuple[lim.Limit, ...]]) -> KeyEntry:
    scope = f"key/{key.name}"
    limits = tuple(lim.rate_limits(scope, key.rate_limits) + lim.budgets(scope, key.budgets))
    limits += team_limits.get(key.team or "", ())
    return KeyEntry(
        name=key.name,
        team=key.team,
        identity=Identity(key=key.name, team=key.team, attributes=_attributes(key)),
        permissions=Permissions.of(key.allowed),
        limits=limits,
        expires_at_s=key.expires_at.timestamp() if key.expires_at else None,
        disabled=key.disabled,
        policy_header=policy_header(limits) if limits else b"",
        scopes=(f"key/{key.name}",) + ((f"team/{key.team}",) if key.team else ()),
    )


def _attributes(key: VirtualKeyConfig) -> dict[str, Any]:
    """What the key's identity tells the rest of the gateway: its MCP allow-list, if it has one."""
    return {MCP_ATTRIBUTE: dict(key.mcp)} if key.mcp else {}


def _names(config: GatewayConfig) -> Names:
    by_type: dict[str, str] = {}
    for provider in config.providers:
        by_type.setdefault(provider.type, provider.name)
    families = {}
    for family, types in FAMILY_TYPES.items():
        found = next((by_type[t] for t in types if t in by_type), None)
        if found is not None:
            families[family] = found
    return Names(
        routes={
            route.name: tuple(dict.fromkeys(t.provider for t in route.targets)) for route in config.routes
        },
        first_targets={
            route.name: min(((t.priority, i, t.provider, t.model) for i, t in enumerate(route.targets)))[2:]
            for route in config.routes
        },
        providers=frozenset(provider.name for provider in config.providers),
        by_type=by_type,
        families=families,
    )
