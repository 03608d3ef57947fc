"""The set of provider runtimes of one config revision, and the diff that builds the next one.

``build_pool_set`` reuses the runtime of every provider whose fingerprint (config + key values)
is unchanged, so a reload touches only what changed; the runtimes it replaces are returned as
``retired`` for the caller to drain. Building is all-or-nothing: if any provider fails to build,
``ConfigError`` is raised and nothing that is serving was touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.pool.provider_runtime import ProviderRuntime, build_runtime, fingerprint_of


@dataclass(frozen=True)
class PoolSet:
    runtimes: dict[str, ProviderRuntime] = field(default_factory=dict)

    def get(self, name: str) -> ProviderRuntime | None:
        return self.runtimes.get(name)

    def __iter__(self) -> Iterator[ProviderRuntime]:
        return iter(self.runtimes.values())


def build_pool_set(
    config: GatewayConfig, resolver: SecretResolver, previous: PoolSet | None
) -> tuple[PoolSet, list[ProviderRuntime]]:
    """Next pool set and the runtimes it retires. Raises ``ConfigError`` before touching anything."""
    old = previous.runtimes if previous else {}
    runtimes: dict[str, ProviderRuntime] = {}
    for provider in config.providers:
        current = old.get(provider.name)
        if current is not None and current.fingerprint == fingerprint_of(provider, resolver):
            runtimes[provider.name] = current
        else:
            runtimes[provider.name] = build_runtime(provider, resolver)
    retired = [runtime for name, runtime in old.items() if runtimes.get(name) is not runtime]
    return PoolSet(runtimes), retired
