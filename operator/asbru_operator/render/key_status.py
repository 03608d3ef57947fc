"""The status of an LLMVirtualKey or LLMTeam, from its spec and what a gateway reports (pure).

``kubectl get llmvk`` shows three strings: the spend and the budget of the key's first budget
(USD first) in its current window, and what remains; a key without budgets shows its month's
spend and its first rate limit's remaining. Conditions: ``Active`` (False: Expired or Disabled),
``WithinBudget`` (False: OverBudget), ``Degraded`` (limits counted per replica), and ``Ready``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from asbru_gateway.config.compat import field_minor
from asbru_gateway.config.model import GatewayConfig
from asbru_operator.render import status

GOVERNANCE_MINOR = field_minor(GatewayConfig.model_fields["governance"])
"""The config schema minor that introduced the governance section."""
ACTIVE = "Active"
WITHIN_BUDGET = "WithinBudget"


def _amount(metric: str, value: float) -> str:
    if metric == "usd":
        return f"${value:,.2f}"
    return f"{int(value):,} {metric}"


def usage_columns(view: Mapping[str, Any] | None, own: str = "key") -> dict[str, str]:
    """``spend``, ``budget`` and ``remaining`` from a management API key (or team) view: the
    object's own limits (``own``: ``key`` or ``team``; a key's view lists its team's too)."""
    if view is None:
        return {}
    limits: Sequence[Mapping[str, Any]] = [
        lim for lim in view.get("limits") or [] if str(lim["name"]).startswith(own + "-")
    ]
    budgets = sorted(
        (lim for lim in limits if lim["kind"] == "budget"), key=lambda lim: lim["metric"] != "usd"
    )
    if budgets:
        first = budgets[0]
        period = first["window"] + ("" if first["calendar"] else " rolling")
        return {
            "spend": _amount(first["metric"], first["used"]),
            "budget": f"{_amount(first['metric'], first['quota'])}/{period}",
            "remaining": _amount(first["metric"], first["remaining"]),
        }
    columns: dict[str, str] = {}
    usage = view.get("usage") or {}
    if usage:
        columns["spend"] = f"${usage['month']['usd']:,.2f} this month"
    if limits:
        first = limits[0]
        columns["remaining"] = f"{_amount(first['metric'], first['remaining'])}/{first['window']}"
    return columns


def key_checks(
    spec: Mapping[str, Any], view: Mapping[str, Any] | None, *, now: datetime | None = None
) -> dict[str, status.Check]:
    now = now or datetime.now(UTC)
    checks: dict[str, status.Check] = {}
    expires = spec.get("expiresAt")
    if spec.get("disabled"):
        checks[ACTIVE] = status.Check(False, "Disabled", "the key is disabled")
    elif expires and datetime.fromisoformat(str(expires).replace("Z", "+00:00")) <= now:
        checks[ACTIVE] = status.Check(False, "Expired", f"the key expired at {expires}")
    else:
        checks[ACTIVE] = status.Check(True, "Active", "the key is accepted")
    checks[WITHIN_BUDGET] = budget_check(view)
    return checks


def budget_check(view: Mapping[str, Any] | None) -> status.Check:
    if view is None:
        return status.Check(None, "Unknown", "no gateway has reported usage yet")
    spent = [lim for lim in view.get("limits") or [] if lim["kind"] == "budget" and lim["remaining"] <= 0]
    if spent:
        names = ", ".join(lim["name"] for lim in spent)
        return status.Check(False, "OverBudget", f"over budget: {names} (refused with 429 until it resets)")
    return status.Check(True, "WithinBudget", "within every budget")


def degraded_check(spec: Mapping[str, Any], schema_minor: int = GOVERNANCE_MINOR) -> status.Check:
    """For a gateway: governance is not served yet because some pods read an older config schema
    (rendered without it, ``compat.downgraded``), or limits are per replica (several, no Redis)."""
    governance = spec.get("governance")
    replicas = int(spec.get("replicas", 2))
    if governance is not None and schema_minor < GOVERNANCE_MINOR:
        return status.Check(
            True,
            "SchemaTooOld",
            f"some pods read config schema minor {schema_minor} (governance needs {GOVERNANCE_MINOR}):"
            " virtual keys, limits and budgets apply once every pod runs a gateway that knows them",
        )
    if governance is not None and governance.get("redis") is None and replicas > 1:
        return status.Check(
            True,
            "PerReplicaLimits",
            f"no Redis configured: each of the {replicas} replicas counts limits and budgets on its own "
            f"(up to {replicas}x the configured amounts); set spec.governance.redis",
        )
    return status.Check(False, "SharedCounters", "limits are exact across replicas")
