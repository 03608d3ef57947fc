"""The ``governance`` plugin: virtual keys, permissions, rate limits, budgets and cost (contract v2).

Declared by the config's ``governance`` section (not under ``plugins``), built by the registry.

- ``pre_request``: authenticate the credential the client presented wherever its SDK put it
  (``request.credential``; an ``x-bf-vk`` header always names a virtual key), set
  ``request.identity``, check the model/route/provider against the key's globs (403 naming the
  model), then reserve the request's estimated tokens and cost against every limit of the key and
  its team in one atomic store call (one Redis round trip). Over a limit: 429 ``rate_limited`` or
  ``budget_exceeded`` with ``Retry-After``. Every response to a key with limits carries
  ``RateLimit-Policy`` and ``RateLimit`` (``request.response_headers``, so streams get them too).
- ``post_response`` (answers that are not streams): the request's cost in ``request.cost`` and the
  ``x-asbru-cost`` header.
- ``on_complete`` (after the last byte, streams included): settle the reservation to the actual usage
  and count it on the key's, team's, provider's and model's accounting counters (one more store
  call, off the client's path), and in the metrics.
- ``authenticate`` (``/mcp``, ``/v1/mcp/...``): the same key lookup, no counting; the key's MCP
  allow-list rides in ``identity.attributes["mcp"]``.
- With provider budgets, ``before_attempt``/``after_attempt`` reserve against the provider of each
  upstream attempt (an over-budget provider is a 429 that routing can fall back from).

The counter store (Redis or in-process) outlives config revisions while its settings are unchanged:
a new instance takes it over from the one it replaces (``previous``), so a reload keeps both the
connection and the counts. A bug in this plugin fails the request closed (503): it guards spend.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from asbru_gateway.config.governance import FailurePolicy
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.core.attempt import Attempt
from asbru_gateway.core.headers import RequestHeaders
from asbru_gateway.core.identity import ClientCredential, Identity
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.governance import metrics as gov_metrics
from asbru_gateway.governance.compile import Compiled, compile_governance
from asbru_gateway.governance.errors import (
    BudgetExceededError,
    ForbiddenError,
    GovernanceUnavailableError,
    RateLimitedError,
    UnauthorizedError,
)
from asbru_gateway.governance.estimate import estimate_tokens
from asbru_gateway.governance.headers import POLICY, STATE, state_header
from asbru_gateway.governance.keys import KeyEntry
from asbru_gateway.governance.limits import MICRO, REQUESTS, TOKENS, Limit, amounts, needs_usage
from asbru_gateway.governance.shared_store import SharedStore
from asbru_gateway.governance.store import CounterStore, Decision, Settlement, StoreUnavailableError
from asbru_gateway.observability import metrics
from asbru_gateway.observability.logging import register_secret
from asbru_gateway.plugins.base import Outcome, ShortCircuit

log = logging.getLogger(__name__)
NAME = "governance"
COST_HEADER = b"x-asbru-cost"
_MISSING = UnauthorizedError(
    "a virtual key is required: send it as a Bearer token, x-api-key, x-goog-api-key or x-bf-vk"
)
_UNKNOWN = UnauthorizedError("the virtual key presented is not valid")
_DISABLED = UnauthorizedError("the virtual key presented is disabled")
_EXPIRED = UnauthorizedError("the virtual key presented has expired")
_UNAVAILABLE = GovernanceUnavailableError(
    "limits cannot be checked right now (the counter store is unavailable); retry shortly", retry_after=1
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Reservation:
    """What a request reserved, to be settled to its actual usage once it is over."""

    __slots__ = ("amounts", "at_ms", "entry", "limits", "micro_usd", "tokens")

    def __init__(
        self, entry: KeyEntry | None, limits: tuple[Limit, ...], counted: list[int], at_ms: int
    ) -> None:
        self.entry = entry
        self.limits = limits
        self.amounts = counted
        self.at_ms = at_ms
        self.tokens = 0
        self.micro_usd = 0


class GovernancePlugin:
    fail_open = False

    def __init__(
        self, compiled: Compiled, previous: object | None = None, clock: Callable[[], int] = _now_ms
    ):
        self.name = NAME
        self.compiled = compiled
        self._required = compiled.config.require_virtual_key
        self._on_failure_closed = (
            compiled.redis is not None and compiled.redis[0].on_failure is FailurePolicy.CLOSED
        )
        self._cost_header = compiled.config.cost_header
        self._reserve_completion = compiled.config.reserve_completion_tokens
        self._clock = clock
        self._previous = previous if isinstance(previous, GovernancePlugin) else None
        self.shared: SharedStore | None = None
        self._cost_children: dict[tuple[str, str], Any] = {}
        self._accounting = compiled.config.usage_accounting
        for secret in compiled.secrets:
            register_secret(secret)

    @property
    def store(self) -> CounterStore:
        assert self.shared is not None
        return self.shared.store

    async def start(self) -> None:
        previous = self._previous.shared if self._previous else None
        self.shared = await SharedStore.take(self.compiled.redis, previous)
        self._previous = None
        workers = int(os.environ.get("ASBRU_WORKERS", "1"))
        if previous is None and not self.shared.store.shared and workers > 1:
            log.warning("governance without Redis: each of the %d workers counts limits on its own", workers)

    async def stop(self) -> None:
        if self.shared is not None:
            await self.shared.release()

    # --- pre_request ---------------------------------------------------------------------------

    async def pre_request(self, request: LLMRequest) -> ShortCircuit | None:
        entry = self._key_of(request.credential)
        if entry is None:
            return None
        if not entry.permissions.everything:
            self._permit(entry, request)
        request.identity = entry.identity
        limits = entry.limits
        if not limits:
            return None
        reservation = Reservation(entry, limits, [], self._clock())
        if needs_usage(limits):
            self._estimate(request, reservation)
        reservation.amounts = amounts(limits, reservation.tokens, reservation.micro_usd)
        decision = await self._reserve(limits, reservation.amounts, reservation.at_ms)
        if decision is None:
            return None
        headers = [
            (POLICY, entry.policy_header),
            (STATE, state_header(limits, decision.used, reservation.at_ms)),
        ]
        if not decision.allowed:
            error = _over(limits[decision.failed], decision)
            _count(error.code or "rate_limited")
            return ShortCircuit.fail(error, headers=headers)
        _count("allowed")
        if request.response_headers is None:
            request.response_headers = headers
        else:
            request.response_headers.extend(headers)
        _state(request)[NAME] = reservation
        return None

    def _key_of(self, credential: ClientCredential | None) -> KeyEntry | None:
        """The enabled, unexpired key presented (None: no key, and none is required), or 401."""
        if credential is None:
            if self._required:
                _count("unauthorized")
                raise _MISSING
            return None
        entry = self.compiled.keys.find(credential.reveal())
        if entry is None:
            if self._required or credential.source == "x-bf-vk":
                _count("unauthorized")
                raise _UNKNOWN
            return None
        if entry.disabled or (entry.expires_at_s is not None and time.time() >= entry.expires_at_s):
            _count("unauthorized")
            raise _DISABLED if entry.disabled else _EXPIRED
        return entry

    # --- authenticate (the MCP endpoints) --------------------------------------------------------

    async def authenticate(
        self, credential: ClientCredential | None, headers: RequestHeaders
    ) -> Identity | None:
        """The caller of ``/mcp`` and ``/v1/mcp/...`` by virtual key, the same rules as ``pre_request``
        (no limits are counted: a tool call is not an LLM request). Its ``identity.attributes["mcp"]``
        carries the key's MCP allow-list; ``mcp.access`` decides from it (deny by default)."""
        entry = self._key_of(credential)
        return entry.identity if entry is not None else None

    def _permit(self, entry: KeyEntry, request: LLMRequest) -> None:
        names = [request.model]
        if isinstance(request.fallbacks, list):
            names += [name for name in request.fallbacks if isinstance(name, str)]
        allowed = entry.permissions
        for model in names:
            route, providers = self.compiled.names.resolve(model, request.family)
            refused = None
            if not allowed.models(model):
                refused = f"this virtual key may not use model {_shown(model)!r}"
            elif route is not None and not allowed.routes(route):
                refused = f"this virtual key may not use route {_shown(model)!r}"
            else:
                for provider in providers:
                    if not allowed.providers(provider):
                        refused = (
                            f"this virtual key may not use model {_shown(model)!r} (provider {provider!r})"
                        )
                        break
            if refused is not None:
                _count("forbidden")
                raise ForbiddenError(refused, param="model")

    def _estimate(self, request: LLMRequest, reservation: Reservation) -> None:
        prompt, completion = estimate_tokens(request, self._reserve_completion)
        reservation.tokens = prompt + completion
        target = self.compiled.names.priced_as(request.model, request.family)
        if target is not None:
            reservation.micro_usd = self.compiled.prices.price(*target).micro_usd(prompt, completion)

    async def _reserve(self, limits: tuple[Limit, ...], counted: list[int], now_ms: int) -> Decision | None:
        """The store's decision; None when the store is down and the policy lets the request through."""
        try:
            return await self.store.reserve(limits, counted, now_ms)
        except StoreUnavailableError:
            if self._on_failure_closed:
                _count("unavailable")
                raise _UNAVAILABLE from None
            _count("unchecked")
            return None

    # --- after the answer ------------------------------------------------------------------------

    async def post_response(self, request: LLMRequest, outcome: Outcome) -> Outcome | None:
        if outcome.reply is None:
            return None
        cost = self._cost(request)
        if self._cost_header:
            outcome.headers.append((COST_HEADER, f"{cost:.6f}".encode()))
        return None

    async def on_complete(self, request: LLMRequest, outcome: Outcome) -> None:
        cost = request.cost if request.cost is not None else self._cost(request)
        usage = request.usage
        provider = request.provider
        if provider is not None and cost:
            self._cost_series(provider, request.metric_model).inc(cost)
        identity = request.identity
        entry = self.compiled.keys.entries.get(identity.key) if identity is not None else None
        if entry is not None:
            _key_metrics(entry, cost, usage)
        settlement = Settlement([])
        state = request.state
        if state:
            for name in (NAME, _PROVIDER):
                reservation = state.get(name)
                if reservation is not None:
                    self._correct(settlement, request, reservation, cost)
        if self._accounting and (entry is not None or provider is not None):
            self._record(settlement, request, entry, cost)
        if settlement.corrections or settlement.scopes:
            try:
                await self.store.settle(settlement)
            except StoreUnavailableError:
                return

    def _correct(
        self, settlement: Settlement, request: LLMRequest, reservation: Reservation, cost: float
    ) -> None:
        """Replace the estimate by the actual usage. An unknown usage after the answer started (a
        stream cut short, a provider that reports none) keeps the estimate; a failure refunds it."""
        usage = request.usage
        if usage is None and request.response_started and request.events_sent:
            return
        tokens = usage.total_tokens if usage is not None else 0
        micro = round(cost * MICRO) if usage is not None else 0
        deltas = [
            0 if limit.metric == REQUESTS else (tokens if limit.metric == TOKENS else micro) - counted
            for limit, counted in zip(reservation.limits, reservation.amounts, strict=True)
        ]
        if any(deltas):
            settlement.corrections.append((reservation.limits, deltas, reservation.at_ms))

    def _record(
        self, settlement: Settlement, request: LLMRequest, entry: KeyEntry | None, cost: float
    ) -> None:
        """Count the request on the accounting counters of its key, team, provider and model."""
        scopes: list[str] = list(entry.scopes) if entry is not None else []
        provider = request.provider
        if provider is not None:
            scopes.append(f"provider/{provider}")
            scopes.append(f"model/{provider}/{metrics.bounded_model(request.metric_model) or '-'}")
        usage = request.usage
        settlement.scopes = tuple(scopes)
        settlement.tokens = usage.total_tokens if usage else 0
        settlement.micro_usd = round(cost * MICRO)
        settlement.at_ms = self._clock()

    def _cost(self, request: LLMRequest) -> float:
        micro = self.compiled.prices.cost(request.provider, request.upstream_model, request.usage)
        request.cost = micro / MICRO
        return request.cost

    def _cost_series(self, provider: str, model_label: str) -> Any:
        model = metrics.bounded_model(model_label)
        child = self._cost_children.get((provider, model))
        if child is None:
            child = self._cost_children[(provider, model)] = gov_metrics.COST.labels(provider, model)
        return child


_PROVIDER = NAME + ".provider"


class GovernanceWithProviderBudgets(GovernancePlugin):
    """Adds the attempt hooks that reserve against each attempt's provider budget."""

    async def before_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        limits = self.compiled.provider_limits.get(attempt.provider)
        if not limits:
            return
        prompt, completion = estimate_tokens(request, self._reserve_completion)
        reservation = Reservation(None, limits, [], self._clock())
        reservation.tokens = prompt + completion
        reservation.micro_usd = self.compiled.prices.price(attempt.provider, attempt.model).micro_usd(
            prompt, completion
        )
        reservation.amounts = amounts(limits, reservation.tokens, reservation.micro_usd)
        decision = await self._reserve(limits, reservation.amounts, reservation.at_ms)
        if decision is None:
            return
        if not decision.allowed:
            error = _over(limits[decision.failed], decision)
            _count("budget_exceeded")
            raise BudgetExceededError(
                f"provider {attempt.provider!r} is over its budget: {error.message}",
                retry_after=error.retry_after,
            )
        _state(request)[_PROVIDER] = reservation

    async def after_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        state = request.state
        reservation = state.pop(_PROVIDER, None) if state and attempt.error is not None else None
        if reservation is not None:
            refunds = [
                -amount if limit.metric != REQUESTS else 0
                for limit, amount in zip(reservation.limits, reservation.amounts, strict=True)
            ]
            try:
                await self.store.settle(Settlement([(reservation.limits, refunds, reservation.at_ms)]))
            except StoreUnavailableError:
                return


class GovernanceType:
    """The registry's factory: the plain plugin, or the one with attempt hooks for provider budgets."""

    def __call__(self, compiled: Compiled, previous: object | None) -> GovernancePlugin:
        if compiled.provider_limits:
            return GovernanceWithProviderBudgets(compiled, previous)
        return GovernancePlugin(compiled, previous)


def governance_plugin(
    config: GatewayConfig, resolver: SecretResolver
) -> tuple[str, Callable[[object | None], GovernancePlugin]]:
    """(fingerprint, factory taking the instance it replaces) for the config's governance section."""
    compiled = compile_governance(config, resolver)
    factory = GovernanceType()
    return compiled.fingerprint, lambda previous: factory(compiled, previous)


def _over(limit: Limit, decision: Decision) -> RateLimitedError:
    retry_s = max(1, -(-decision.retry_ms // 1000))
    if limit.budget:
        return BudgetExceededError(
            f"budget exceeded: {limit.describe()} ({limit.scope.partition('/')[0]})", retry_after=retry_s
        )
    return RateLimitedError(
        f"rate limit reached: {limit.describe()} ({limit.scope.partition('/')[0]})", retry_after=retry_s
    )


def _state(request: LLMRequest) -> dict[str, Any]:
    if request.state is None:
        request.state = {}
    return request.state


_DECISIONS: dict[str, Any] = {}


def _count(decision: str) -> None:
    child = _DECISIONS.get(decision)
    if child is None:
        child = _DECISIONS[decision] = gov_metrics.DECISIONS.labels(decision)
    child.inc()


def _key_metrics(entry: KeyEntry, cost: float, usage: Any) -> None:
    cache = entry.cache
    if not cache:
        team = entry.team or ""
        cache["cost"] = gov_metrics.KEY_COST.labels(entry.name, team)
        cache["in"] = gov_metrics.KEY_TOKENS.labels(entry.name, team, "input")
        cache["out"] = gov_metrics.KEY_TOKENS.labels(entry.name, team, "output")
    if cost:
        cache["cost"].inc(cost)
    if usage is not None:
        cache["in"].inc(usage.prompt_tokens)
        cache["out"].inc(usage.completion_tokens)


def _shown(model: str) -> str:
    return model if len(model) <= 200 else model[:200] + "..."
