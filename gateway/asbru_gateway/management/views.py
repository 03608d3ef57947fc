"""What the management API shows, read from the serving snapshot's governance plugin and its store.

Reads only (``store.usage``): one store call per scope, off the hot path.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.governance.limits import MICRO, USD, Limit
from asbru_gateway.management.schemas import (
    KeyView,
    LimitState,
    ModelView,
    ProviderView,
    StoreView,
    TeamView,
    Totals,
    Usage,
)
from asbru_gateway.observability.metrics import bounded_model
from asbru_gateway.plugins.builtin.governance import GovernancePlugin


def _now_ms() -> int:
    return int(time.time() * 1000)


class Views:
    def __init__(self, plugin: GovernancePlugin, config: GatewayConfig) -> None:
        self.plugin = plugin
        self.compiled = plugin.compiled
        self.config = config

    async def limits(self, limits: tuple[Limit, ...]) -> list[LimitState]:
        if not limits:
            return []
        now = _now_ms()
        used = await self.plugin.store.usage(limits, now)
        return [_state(limit, count, now) for limit, count in zip(limits, used, strict=True)]

    async def usage(self, scope: str) -> Usage | None:
        if not self.compiled.config.usage_accounting:
            return None
        totals = await self.plugin.store.totals(scope, _now_ms())
        return Usage(day=Totals.model_validate(totals["day"]), month=Totals.model_validate(totals["month"]))

    async def key(self, name: str) -> KeyView | None:
        entry = self.compiled.keys.entries.get(name)
        if entry is None:
            return None
        expired = entry.expires_at_s is not None and time.time() >= entry.expires_at_s
        config = next(key for key in self.compiled.config.virtual_keys if key.name == name)
        return KeyView(
            name=name,
            team=entry.team,
            disabled=entry.disabled,
            expired=expired,
            expires_at=config.expires_at,
            limits=await self.limits(entry.limits),
            usage=await self.usage(f"key/{name}"),
        )

    async def team(self, name: str) -> TeamView | None:
        limits = self.compiled.team_limits.get(name)
        if limits is None:
            return None
        keys = sorted(entry.name for entry in self.compiled.keys.entries.values() if entry.team == name)
        return TeamView(
            name=name, keys=keys, limits=await self.limits(limits), usage=await self.usage(f"team/{name}")
        )

    async def provider(self, name: str) -> ProviderView | None:
        provider = self.config.provider(name)
        if provider is None:
            return None
        budgets = await self.limits(self.compiled.provider_limits.get(name, ()))
        return ProviderView(
            name=name, type=provider.type, budgets=budgets, usage=await self.usage(f"provider/{name}")
        )

    async def models(self) -> list[ModelView]:
        pairs = {(t.provider, t.model) for route in self.config.routes for t in route.targets}
        pairs |= {(p.name, model) for p in self.config.providers for model in p.models}
        views = []
        for provider, model in sorted(pairs) + [(p.name, "other") for p in self.config.providers]:
            price = self.compiled.prices.price(provider, model)
            label = bounded_model(model) or "-"
            views.append(
                ModelView(
                    provider=provider,
                    model=model,
                    input_usd_per_mtok=price.input_per_mtok,
                    output_usd_per_mtok=price.output_per_mtok,
                    price_source=price.source,
                    usage=await self.usage(f"model/{provider}/{label}"),
                )
            )
        return views

    def store(self) -> StoreView:
        store = self.plugin.store
        return StoreView(
            kind="redis" if store.shared else "memory",
            shared=store.shared,
            up=bool(getattr(store, "up", True)),
            pid=os.getpid(),
        )


def _state(limit: Limit, used: int, now_ms: int) -> LimitState:
    scale: float = MICRO if limit.metric == USD else 1
    window = limit.window
    reset_s = math.ceil(window.period(now_ms)[1] / 1000) if window.calendar else window.seconds
    return LimitState(
        name=limit.policy,
        kind="budget" if limit.budget else "rate_limit",
        metric=limit.metric,
        window=window.name,
        calendar=window.calendar,
        quota=limit.quota / scale,
        used=used / scale,
        remaining=max(0, limit.quota - used) / scale,
        reset_seconds=reset_s,
    )


def redacted_config(config: GatewayConfig) -> dict[str, Any]:
    """The effective config as JSON: secret *references* stay (they hold no value), key hashes go."""
    data = config.model_dump(mode="json", by_alias=True)
    for key in (data.get("governance") or {}).get("virtual_keys", []):
        if key.get("hash"):
            key["hash"] = "sha256:***"
    return data
