"""Virtual keys, teams and the gateway's governance spec -> the config's ``governance`` section.

Pure, like the other renderers. A key's value comes from its Secret (the owned one the operator
generated, or the user's own) and goes into the config only as ``sha256:SALT:HASH``, with one salt
per gateway (derived from its uid, so renders are deterministic): a ConfigMap never holds a key.
The Redis password, if any, travels like provider keys: a ``secret:`` reference in the config, the
value in the gateway's own Secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from asbru_gateway.config.governance import GovernanceConfig
from asbru_gateway.governance.keys import render_hash
from asbru_operator.crd_models.common import SecretKeySelector
from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.crd_models.governance import (
    BudgetSpec,
    LLMTeamSpec,
    LLMVirtualKeySpec,
    RateLimitsSpec,
)
from asbru_operator.render import selectors

Body = Mapping[str, Any]
KEY_DATA = "key"
"""The data key of a virtual key's value in its Secret (generated or the user's, by default)."""
ADMIN_PORT = 9090
ADMIN_TOKEN = "admin-token"  # noqa: S105 - the data key of the management API's token in the gateway's Secret
REDIS_PASSWORD = "governance.redis-password"  # noqa: S105 - a data key name, not a value


class GovernanceRenderError(ValueError):
    """Keys, teams and the gateway's governance spec do not fit together (not Accepted)."""


def owned_secret_name(key_name: str) -> str:
    return f"{key_name}-virtual-key"


def key_secret(body: Body) -> SecretKeySelector:
    """Where a key's value lives: its ``secretRef``, or the Secret the operator generates for it."""
    ref = (body.get("spec") or {}).get("secretRef")
    if isinstance(ref, dict) and ref.get("name"):
        return SecretKeySelector(name=str(ref["name"]), key=str(ref.get("key") or KEY_DATA))
    return SecretKeySelector(name=owned_secret_name(str(body["metadata"]["name"])), key=KEY_DATA)


def gateway_salt(gateway: Body) -> bytes:
    uid = str(gateway.get("metadata", {}).get("uid") or gateway["metadata"]["name"])
    return hashlib.sha256(b"asbru-virtual-key-salt\0" + uid.encode()).digest()[:16]


@dataclass
class RenderedGovernance:
    config: GovernanceConfig | None
    secret_data: dict[str, str] = field(default_factory=dict)
    missing: list[tuple[str, SecretKeySelector]] = field(default_factory=list)
    """(LLMVirtualKey name or "redis", the Secret key it needs) for values not found (yet)."""


def selected_keys(gateway: Body, spec: LLMGatewaySpec, keys: Sequence[Body]) -> list[Body]:
    """The keys this gateway serves: its selector, and each key's own gateway selector."""
    governance = spec.governance
    labels = selectors.labels_of(gateway)
    if governance is None:
        return []
    chosen = []
    for body in keys:
        if body.get("metadata", {}).get("deletionTimestamp"):
            continue
        if not selectors.matches(
            governance.virtual_key_selector if governance else None, selectors.labels_of(body)
        ):
            continue
        key_selector = (body.get("spec") or {}).get("gatewaySelector")
        if key_selector and not selectors.matches(_spec(LLMVirtualKeySpec, body).gateway_selector, labels):
            continue
        chosen.append(body)
    return sorted(chosen, key=lambda body: str(body["metadata"]["name"]))


def render_governance(
    gateway: Body,
    spec: LLMGatewaySpec,
    keys: Sequence[Body],
    teams: Sequence[Body],
    secrets: Mapping[str, Mapping[str, str]],
) -> RenderedGovernance:
    governance = spec.governance
    if governance is None:  # a gateway opts in: keys alone do not turn governance on
        return RenderedGovernance(None)
    chosen = selected_keys(gateway, spec, keys)
    salt = gateway_salt(gateway)
    rendered = RenderedGovernance(None)
    team_specs = {str(body["metadata"]["name"]): _spec(LLMTeamSpec, body) for body in teams}
    key_entries = []
    used_teams: set[str] = set()
    for body in chosen:
        name = str(body["metadata"]["name"])
        key_spec = _spec(LLMVirtualKeySpec, body)
        ref = key_secret(body)
        value = secrets.get(ref.name, {}).get(ref.key, "").strip()
        if not value:
            rendered.missing.append((name, ref))
            continue
        if key_spec.team is not None:
            if key_spec.team not in team_specs:
                raise GovernanceRenderError(f"LLMVirtualKey {name!r}: LLMTeam {key_spec.team!r} not found")
            used_teams.add(key_spec.team)
        key_entries.append(_key(name, key_spec, render_hash(salt, value)))
    data: dict[str, Any] = {
        "require_virtual_key": governance.require_virtual_key,
        "virtual_keys": key_entries,
        "teams": [_team(name, team_specs[name]) for name in sorted(used_teams)],
    }
    if governance is not None:
        data["provider_budgets"] = [
            {"provider": b.provider, "budgets": [_budget(x) for x in b.budgets]}
            for b in governance.provider_budgets
        ]
        data["prices"] = [price.model_dump(exclude_none=True) for price in governance.prices]
        if governance.redis is not None:
            data["redis"] = _redis(governance.redis, secrets, rendered)
    try:
        rendered.config = GovernanceConfig.model_validate(data)
    except ValidationError as error:
        raise GovernanceRenderError(f"governance: {error}") from None
    return rendered


def _redis(
    spec: Any, secrets: Mapping[str, Mapping[str, str]], rendered: RenderedGovernance
) -> dict[str, Any]:
    redis: dict[str, Any] = {"url": spec.url, "on_failure": spec.on_failure, "timeout_ms": spec.timeout_ms}
    ref = spec.password_secret_ref
    if ref is not None:
        password = secrets.get(ref.name, {}).get(ref.key, "").strip()
        if not password:
            rendered.missing.append(("redis", ref))
        else:
            rendered.secret_data[REDIS_PASSWORD] = password
            redis["password"] = f"secret:{REDIS_PASSWORD}"
    return redis


def _key(name: str, spec: LLMVirtualKeySpec, hashed: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "hash": hashed, "disabled": spec.disabled}
    if spec.team is not None:
        entry["team"] = spec.team
    if spec.allowed is not None:
        entry["allowed"] = {k: sorted(set(v)) for k, v in spec.allowed.model_dump().items()}
    if spec.rate_limits is not None:
        entry["rate_limits"] = _limits(spec.rate_limits)
    if spec.budgets:
        entry["budgets"] = [_budget(budget) for budget in spec.budgets]
    if spec.expires_at is not None:
        entry["expires_at"] = spec.expires_at
    return entry


def _team(name: str, spec: LLMTeamSpec) -> dict[str, Any]:
    team: dict[str, Any] = {"name": name, "budgets": [_budget(budget) for budget in spec.budgets]}
    if spec.rate_limits is not None:
        team["rate_limits"] = _limits(spec.rate_limits)
    return team


def _limits(spec: RateLimitsSpec) -> dict[str, int]:
    return {name: value for name, value in spec.model_dump().items() if value is not None}


def _budget(spec: BudgetSpec) -> dict[str, Any]:
    return spec.model_dump(exclude_none=True)


def _spec(model: Any, body: Body) -> Any:
    try:
        return model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        kind, name = body.get("kind", "object"), body.get("metadata", {}).get("name")
        raise GovernanceRenderError(f"{kind} {name!r}: {error}") from None


def governance_secrets(gateway_spec: LLMGatewaySpec, keys: Sequence[Body]) -> set[str]:
    """Names of the Secrets a gateway's governance reads (keys' values, the Redis password)."""
    names = {key_secret(body).name for body in keys}
    redis = gateway_spec.governance.redis if gateway_spec.governance else None
    if redis is not None and redis.password_secret_ref is not None:
        names.add(redis.password_secret_ref.name)
    return names


def admin_env(ref: Any) -> list[dict[str, Any]]:
    """The gateway container's management API settings; the token from the gateway's own Secret."""
    return [
        {"name": "ASBRU_ADMIN_PORT", "value": str(ADMIN_PORT)},
        {"name": "ASBRU_ADMIN_HOST", "value": "0.0.0.0"},  # noqa: S104 - the operator reaches the pod IP
        {
            "name": "ASBRU_ADMIN_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": ref.config_name, "key": ADMIN_TOKEN}},
        },
    ]
