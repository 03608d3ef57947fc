"""From the model name a client sent to an ordered list of provider/model candidates.

``model`` is a route name (configured) or ``provider/model`` (a provider's name, then the
upstream model, which may itself contain slashes: ``openrouter/meta-llama/llama-3-70b``).
A route's targets are grouped by priority (lower first); inside a tier they are ordered by
weighted random choice, so the first candidate is weight-proportional and the others are its
fallbacks. A request's own ``fallbacks`` list (Bifrost's field) is appended after the route's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from asbru_gateway.config.model import DEFAULT_FALLBACK_TRIGGERS, GatewayConfig, RouteConfig, RouteTarget
from asbru_gateway.errors import InvalidRequestError, ModelNotFoundError

MAX_REQUEST_FALLBACKS = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: tuple[Candidate, ...]
    triggers: frozenset[str]


class RouteTable:
    """Built once per config revision; ``plan`` is a dict lookup plus, for routes, a weighted shuffle."""

    def __init__(self, config: GatewayConfig) -> None:
        self._providers = frozenset(p.name for p in config.providers)
        self._tiers: dict[str, tuple[tuple[RouteTarget, ...], ...]] = {
            route.name: _tiers(route) for route in config.routes
        }
        self._triggers = {route.name: frozenset(route.fallback_on) for route in config.routes}
        # A route with one target per tier always plans the same: built once, not per request.
        self._fixed: dict[str, tuple[Candidate, ...]] = {
            name: tuple(Candidate(tier[0].provider, tier[0].model) for tier in tiers)
            for name, tiers in self._tiers.items()
            if all(len(tier) == 1 for tier in tiers)
        }
        self._default_triggers = frozenset(DEFAULT_FALLBACK_TRIGGERS)
        self._fixed_plans = {name: Plan(fixed, self._triggers[name]) for name, fixed in self._fixed.items()}

    def plan(self, model: str, fallbacks: object = None) -> Plan:
        if not fallbacks:
            fixed = self._fixed_plans.get(model)
            if fixed is not None:
                return fixed
        candidates, triggers = self._resolve(model, param="model")
        if fallbacks:
            if not isinstance(fallbacks, list) or len(fallbacks) > MAX_REQUEST_FALLBACKS:
                raise InvalidRequestError(
                    f"fallbacks must be a list of at most {MAX_REQUEST_FALLBACKS} model names",
                    param="fallbacks",
                )
            for index, name in enumerate(fallbacks):
                if not isinstance(name, str):
                    raise InvalidRequestError("fallbacks must contain model names", param="fallbacks")
                candidates += self._resolve(name, param=f"fallbacks[{index}]")[0]
        return Plan(candidates, triggers)

    def _resolve(self, model: str, *, param: str) -> tuple[tuple[Candidate, ...], frozenset[str]]:
        fixed = self._fixed.get(model)
        if fixed is not None:
            return fixed, self._triggers[model]
        tiers = self._tiers.get(model)
        if tiers is not None:
            ordered = tuple(Candidate(t.provider, t.model) for tier in tiers for t in _weighted_order(tier))
            return ordered, self._triggers[model]
        provider, slash, upstream_model = model.partition("/")
        if slash and upstream_model and provider in self._providers:
            return (Candidate(provider, upstream_model),), self._default_triggers
        raise ModelNotFoundError(
            f"The model {model!r} does not exist: use a route name or 'provider/model' with a "
            "configured provider (GET /v1/models lists them)",
            param=param,
        )


def _tiers(route: RouteConfig) -> tuple[tuple[RouteTarget, ...], ...]:
    priorities = sorted({target.priority for target in route.targets})
    return tuple(tuple(t for t in route.targets if t.priority == p) for p in priorities)


def _weighted_order(tier: tuple[RouteTarget, ...]) -> list[RouteTarget]:
    """A weighted random permutation (Efraimidis-Spirakis keys): P(first) is weight-proportional."""
    if len(tier) == 1:
        return list(tier)
    return sorted(tier, key=lambda t: random.random() ** (1.0 / t.weight), reverse=True)  # noqa: S311
