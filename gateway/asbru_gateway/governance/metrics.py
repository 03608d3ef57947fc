"""Governance metrics, on the gateway's one registry. Labels are configured names only.

``virtual_key`` and ``team`` are names from the config (a key the client made up is never a label);
``provider`` and ``model`` are the configured provider and the bounded model label telemetry uses.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from asbru_gateway.observability.metrics import REGISTRY

COST = Counter(
    "asbru_cost_usd",
    "Cost of answered requests in USD (model prices and overrides), by provider and model.",
    ["provider", "model"],
    registry=REGISTRY,
)
KEY_COST = Counter(
    "asbru_virtual_key_cost_usd",
    "Cost in USD of requests made with a virtual key, by key and its team.",
    ["virtual_key", "team"],
    registry=REGISTRY,
)
KEY_TOKENS = Counter(
    "asbru_virtual_key_tokens",
    "Tokens of requests made with a virtual key, by key, team and direction (input or output).",
    ["virtual_key", "team", "direction"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "asbru_governance_decisions",
    "Governance decisions: allowed, unauthorized, forbidden, rate_limited, budget_exceeded, "
    "unavailable (store down, fail closed), unchecked (store down, fail open).",
    ["decision"],
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "asbru_governance_store_errors",
    "Failed calls to the shared counter store (Redis).",
    registry=REGISTRY,
)
STORE_UP = Gauge(
    "asbru_governance_store_up",
    "1 while the shared counter store (Redis) answers, 0 while it is down (failure policy applies).",
    registry=REGISTRY,
)
