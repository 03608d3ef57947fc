"""KEP-1623 conditions, computed purely: checks in, a condition list out.

``lastTransitionTime`` changes only when a condition's status flips, so writing the same state
twice is a no-op, and ``status_changed`` lets callers skip the write altogether (no event loops).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"
PROGRAMMED = "Programmed"
READY = "Ready"
DEGRADED = "Degraded"
INFORMATIONAL = frozenset({DEGRADED})
"""Conditions that say something about the object without making it not Ready (status True = yes)."""


@dataclass(frozen=True)
class Check:
    """The outcome of one aspect: ``ok`` None means not known yet (status Unknown)."""

    ok: bool | None
    reason: str
    message: str = ""

    @property
    def status(self) -> str:
        return "Unknown" if self.ok is None else str(self.ok)


def timestamp(now: datetime | None = None) -> str:
    """RFC 3339, second precision, UTC: the form Kubernetes stores."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions_for(
    checks: Mapping[str, Check],
    *,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] = (),
    now: str,
) -> list[dict[str, Any]]:
    """Conditions for ``checks`` plus ``Ready`` (all checks True), keeping unchanged transition times."""
    failing = [
        (kind, check) for kind, check in checks.items() if check.ok is not True and kind not in INFORMATIONAL
    ]
    if not failing:
        ready = Check(True, "Ready", "all conditions are met")
    else:
        kind, first = failing[0]
        ready = Check(False if first.ok is False else None, first.reason, f"{kind}: {first.message}")
    old = {str(c.get("type")): c for c in previous}
    result = []
    for kind, check in {**checks, READY: ready}.items():
        before = old.get(kind)
        since = before.get("lastTransitionTime") if before and before.get("status") == check.status else None
        condition: dict[str, Any] = {
            "type": kind,
            "status": check.status,
            "reason": check.reason,
            "message": check.message[:32768],
            "lastTransitionTime": since or now,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        result.append(condition)
    return result


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], updates: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``previous`` with the conditions of ``updates`` replaced (by type), order kept."""
    by_type = {str(c.get("type")): dict(c) for c in previous}
    for condition in updates:
        by_type[str(condition["type"])] = dict(condition)
    return list(by_type.values())


def status_changed(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether writing ``desired`` over ``current`` changes anything (ignoring fields not in desired)."""
    return any(current.get(key) != value for key, value in desired.items())


@dataclass(frozen=True)
class PodReport:
    """What one pod said on ``/readyz``; all None when it gave no answer (yet)."""

    pod: str
    revision: str | None = None
    """The revision it serves, when it is ready."""
    schema_minor: int | None = None
    """The config schema minor it reads; 0 for gateways older than that report."""
    rejected_revision: str | None = None
    rejected_reason: str | None = None


MAX_REASON = 300
"""Characters of one pod's refusal reason quoted in Programmed (the pod's /readyz has it all)."""


def programmed_check(*, revision: str, desired: int, reports: Sequence[PodReport]) -> tuple[int, Check]:
    """How many pods serve ``revision``, whether that covers the ``desired`` replicas, and which
    pods refuse it and why (then it is not Programmed, whatever the count)."""
    current = sum(1 for report in reports if report.revision == revision)
    message = f"{current} of {desired} pods run revision {revision}"
    refusals: dict[str, list[str]] = {}
    for report in reports:
        if report.rejected_revision == revision:
            reason = report.rejected_reason or "no reason given"
            reason = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON] + "..."
            refusals.setdefault(reason, []).append(report.pod)
    for reason, pods in refusals.items():
        refuse = "refuses" if len(pods) == 1 else "refuse"
        message += f"; {', '.join(sorted(pods))} {refuse} it: {reason}"
    if refusals:
        return current, Check(False, "Rejected", message)
    if current >= desired:
        return current, Check(True, "Programmed", message)
    return current, Check(False, "Pending", message)
