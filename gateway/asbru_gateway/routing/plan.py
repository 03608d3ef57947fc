"""From the model name a client sent to an ordered list of provider/model candidates.

``model`` is, in this order of precedence:

1. a route name (configured);
2. ``provider/model``: a configured provider's name (or a provider *type*, standing for the first
   provider of that type), then the upstream model, which may itself contain slashes
   (``openrouter/meta-llama/llama-3-70b``);
3. under a drop-in prefix (``/openai``, ``/anthropic``, ``/genai``), a bare model name of that
   family (``gpt-4o``, ``claude-...``, ``gemini-...``): the first configured provider of the family,
   so an SDK works unchanged with only its ``base_url`` moved (Bifrost's rule).

A route's targets are grouped by priority (lower first); inside a tier they are ordered by weighted
random choice, so the first candidate is weight-proportional and the others are its fallbacks. A
route falls back only on its typed triggers (``fallback_on``). A request's own ``fallbacks`` list
(Bifrost's field) comes after the route's candidates and is tried after *any* failure of what came
before it, as Bifrost's clients expect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from asbru_gateway.config.model import DEFAULT_FALLBACK_TRIGGERS, GatewayConfig, RouteConfig, RouteTarget
from asbru_gateway.core.formats import FAMILY_TYPES
from asbru_gateway.errors import GatewayError, InvalidRequestError, ModelNotFoundError

MAX_REQUEST_FALLBACKS = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: tuple[Candidate, ...]
    triggers: frozenset[str]
    request_from: int = 1_000_000
    """Index of the first candidate that came from the request's own ``fallbacks``."""

    def next_after(self, index: int, error: GatewayError) -> int | None:
        """The index of the candidate to try after ``index`` failed with ``error``, or None."""
        following = index + 1
        if following >= len(self.candidates):
            return None
        if error.trigger in self.triggers:
            return following
        if following <= self.request_from < len(self.candidates):
            return max(following, self.request_from)
        return None


class RouteTable:
    """Built once per config revision; ``plan`` is a dict lookup plus, for routes, a weighted shuffle."""

    def __init__(self, config: GatewayConfig) -> None:
        self._providers = frozenset(p.name for p in config.providers)
        self._by_type: dict[str, str] = {}
        for provider in config.providers:
            self._by_type.setdefault(provider.type, provider.name)
        self._family: dict[str, str] = {}
        for family, types in FAMILY_TYPES.items():
            for type_id in types:
                if type_id in self._by_type:
                    self._family[family] = self._by_type[type_id]
                    break
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
        self.configured_models: frozenset[str]
        """Model names from the config (route targets, provider model lists): metric labels."""
        self.configured_models = frozenset(
            {target.model for route in config.routes for target in route.targets}
            | {model for provider in config.providers for model in provider.models}
        )
        self._fixed_plans = {name: Plan(fixed, self._triggers[name]) for name, fixed in self._fixed.items()}

    def route_names(self) -> frozenset[str]:
        return frozenset(self._tiers)

    def model_label(self, model: str | None) -> str:
        """A metric label for an upstream model: configured names only, every other name is "other".

        Client-chosen names (``provider/anything``) would otherwise make unbounded label values.
        """
        if not model:
            return ""
        return model if model in self.configured_models else "other"

    def plan(self, model: str, fallbacks: object = None, family: str | None = None) -> Plan:
        if not fallbacks:
            fixed = self._fixed_plans.get(model)
            if fixed is not None:
                return fixed
        candidates, triggers = self._resolve(model, param="model", family=family)
        if not fallbacks:
            return Plan(candidates, triggers)
        if not isinstance(fallbacks, list) or len(fallbacks) > MAX_REQUEST_FALLBACKS:
            raise InvalidRequestError(
                f"fallbacks must be a list of at most {MAX_REQUEST_FALLBACKS} model names",
                param="fallbacks",
            )
        request_from = len(candidates)
        for index, name in enumerate(fallbacks):
            if not isinstance(name, str) or not name:
                raise InvalidRequestError("fallbacks must contain model names", param="fallbacks")
            candidates += self._resolve(name, param=f"fallbacks[{index}]", family=family)[0]
        return Plan(candidates, triggers, request_from)

    def _resolve(
        self, model: str, *, param: str, family: str | None
    ) -> tuple[tuple[Candidate, ...], frozenset[str]]:
        fixed = self._fixed.get(model)
        if fixed is not None:
            return fixed, self._triggers[model]
        tiers = self._tiers.get(model)
        if tiers is not None:
            ordered = tuple(Candidate(t.provider, t.model) for tier in tiers for t in _weighted_order(tier))
            return ordered, self._triggers[model]
        provider, slash, upstream_model = model.partition("/")
        if slash and upstream_model:
            name = provider if provider in self._providers else self._by_type.get(provider)
            if name is not None:
                return (Candidate(name, upstream_model),), self._default_triggers
        if family is not None and family in self._family:
            return (Candidate(self._family[family], model),), self._default_triggers
        raise ModelNotFoundError(
            f"The model {_shown(model)!r} does not exist: use a route name or 'provider/model' with a "
            "configured provider (GET /v1/models lists them)",
            param=param,
        )


def _shown(model: str) -> str:
    """A client's model name as quoted in an error: bounded, so a 1 MB name is not echoed back."""
    return model if len(model) <= 200 else model[:200] + "..."


def _tiers(route: RouteConfig) -> tuple[tuple[RouteTarget, ...], ...]:
    priorities = sorted({target.priority for target in route.targets})
    return tuple(tuple(t for t in route.targets if t.priority == p) for p in priorities)


def _weighted_order(tier: tuple[RouteTarget, ...]) -> list[RouteTarget]:
    """A weighted random permutation (Efraimidis-Spirakis keys): P(first) is weight-proportional."""
    if len(tier) == 1:
        return list(tier)
    return sorted(tier, key=lambda t: random.random() ** (1.0 / t.weight), reverse=True)  # noqa: S311
