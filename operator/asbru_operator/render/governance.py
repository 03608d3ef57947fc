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

from asbru_gateway.config.governance import GovernanceConfig, TeamConfig, VirtualKeyConfig
from asbru_gateway.config.loader import format_validation_error
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
from asbru_operator.render.checks import GatewayRefsError, Problem, RenderError, name_of, spec_of
from asbru_operator.render.refs import MissingRef

Body = Mapping[str, Any]
KEY_DATA = "key"
"""The data key of a virtual key's value in its Secret (generated or the user's, by default)."""
ADMIN_PORT = 9090
ADMIN_TOKEN = "admin-token"  # noqa: S105 - the data key of the management API's token in the gateway's Secret
REDIS_PASSWORD = "governance.redis-password"  # noqa: S105 - a data key name, not a value


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
    left_out: list[Problem] = field(default_factory=list)
    """Keys and teams not in ``config``, and why (a key left out is refused: fail closed)."""


def selected_keys(gateway: Body, spec: LLMGatewaySpec, keys: Sequence[Body]) -> list[Body]:
    """The keys this gateway serves: its selector, and each key's own gateway selector (a key
    whose spec does not parse is selected by the first, and left out with its problem later)."""
    governance = spec.governance
    if governance is None:
        return []
    labels = selectors.labels_of(gateway)
    chosen = []
    for body in keys:
        if body.get("metadata", {}).get("deletionTimestamp"):
            continue
        if not selectors.matches(governance.virtual_key_selector, selectors.labels_of(body)):
            continue
        key_spec, _ = spec_of(LLMVirtualKeySpec, "LLMVirtualKey", body)
        if key_spec is not None and not selectors.matches(key_spec.gateway_selector, labels):
            continue
        chosen.append(body)
    return sorted(chosen, key=name_of)


def render_governance(
    gateway: Body,
    spec: LLMGatewaySpec,
    keys: Sequence[Body],
    teams: Sequence[Body],
    secrets: Mapping[str, Mapping[str, str]],
) -> RenderedGovernance:
    """The ``governance`` section; ``RenderError`` if the gateway's own governance spec is invalid,
    ``GatewayRefsError`` if its Redis password is missing."""
    governance = spec.governance
    if governance is None:  # a gateway opts in: keys alone do not turn governance on
        return RenderedGovernance(None)
    rendered = RenderedGovernance(None)
    team_entries = _teams(teams)
    salt = gateway_salt(gateway)
    key_entries = []
    used_teams: set[str] = set()
    for body in selected_keys(gateway, spec, keys):
        entry = _key_entry(body, salt, secrets, team_entries, rendered.left_out)
        if entry is not None:
            key_entries.append(entry)
            used_teams.update([entry["team"]] if "team" in entry else [])
    data: dict[str, Any] = {
        "require_virtual_key": governance.require_virtual_key,
        "virtual_keys": key_entries,
        "teams": [team_entries[name] for name in sorted(used_teams)],
        "provider_budgets": [
            {"provider": b.provider, "budgets": [_budget(x) for x in b.budgets]}
            for b in governance.provider_budgets
        ],
        "prices": [price.model_dump(exclude_none=True) for price in governance.prices],
    }
    if governance.redis is not None:
        data["redis"] = _redis(name_of(gateway), governance.redis, secrets, rendered)
    try:
        rendered.config = GovernanceConfig.model_validate(data)
    except ValidationError as error:
        raise RenderError(f"governance: {format_validation_error(error)}") from None
    return rendered


def _teams(teams: Sequence[Body]) -> dict[str, dict[str, Any] | Problem]:
    """Every LLMTeam of the namespace as a contract entry, or the problem that keeps it out (its
    keys are left out with it, and name it)."""
    entries: dict[str, dict[str, Any] | Problem] = {}
    for body in teams:
        name = name_of(body)
        team_spec, problems = spec_of(LLMTeamSpec, "LLMTeam", body)
        entry = _team(name, team_spec) if team_spec is not None else None
        if entry is not None:
            problems = _contract_problems(TeamConfig, "LLMTeam", name, entry)
        entries[name] = problems[0] if problems or entry is None else entry
    return entries


def _key_entry(
    body: Body,
    salt: bytes,
    secrets: Mapping[str, Mapping[str, str]],
    teams: Mapping[str, dict[str, Any] | Problem],
    left_out: list[Problem],
) -> dict[str, Any] | None:
    """One key's contract entry (its value only hashed), or None and its problem in ``left_out``."""
    name = name_of(body)
    key_spec, problems = spec_of(LLMVirtualKeySpec, "LLMVirtualKey", body)
    if key_spec is None:
        left_out.extend(problems)
        return None
    ref = key_secret(body)
    value = secrets.get(ref.name, {}).get(ref.key, "").strip()
    team = teams.get(key_spec.team) if key_spec.team is not None else None
    if not value:
        reason = "KeyNotFound" if ref.name in secrets else "SecretNotFound"
        message = MissingRef(name, ref.name, ref.key, ref.name in secrets, kind="LLMVirtualKey").describe()
        problems.append(Problem("LLMVirtualKey", name, reason, message, unresolved=True))
    elif key_spec.team is not None and team is None:
        message = f"LLMTeam {key_spec.team!r} not found"
        problems.append(Problem("LLMVirtualKey", name, "TeamNotFound", message, unresolved=True))
    elif isinstance(team, Problem):
        message = f"LLMTeam {key_spec.team!r} is not served: {team.message}"
        problems.append(Problem("LLMVirtualKey", name, "TeamNotServed", message, unresolved=True))
    entry = _key(name, key_spec, render_hash(salt, value)) if not problems else None
    if entry is not None:
        problems = _contract_problems(VirtualKeyConfig, "LLMVirtualKey", name, entry)
    left_out.extend(problems)
    return None if problems else entry


def key_problems(
    body: Body, secrets: Mapping[str, Mapping[str, str]], teams: Sequence[Body]
) -> list[Problem]:
    """Why a key is left out of every gateway's config (none: it is served), for its own status:
    the same checks the render makes (spec, Secret and key, team, the gateway's contract)."""
    left_out: list[Problem] = []
    _key_entry(body, _STATUS_SALT, secrets, _teams(teams), left_out)
    return left_out


_STATUS_SALT = bytes(16)
"""Any salt of the real length: the hash is only checked for its shape here, never stored."""


def _contract_problems(model: Any, kind: str, name: str, entry: Mapping[str, Any]) -> list[Problem]:
    """What the gateway's contract refuses in one entry (checked alone, so others still render)."""
    try:
        model.model_validate(entry)
    except ValidationError as error:
        return [Problem(kind, name, "Invalid", format_validation_error(error))]
    return []


def _redis(
    gateway: str, spec: Any, secrets: Mapping[str, Mapping[str, str]], rendered: RenderedGovernance
) -> dict[str, Any]:
    redis: dict[str, Any] = {"url": spec.url, "on_failure": spec.on_failure, "timeout_ms": spec.timeout_ms}
    ref = spec.password_secret_ref
    if ref is not None:
        password = secrets.get(ref.name, {}).get(ref.key, "").strip()
        if not password:
            missing = MissingRef(gateway, ref.name, ref.key, ref.name in secrets, kind="LLMGateway")
            reason = "KeyNotFound" if missing.secret_exists else "SecretNotFound"
            raise GatewayRefsError(
                reason,
                f"{missing.describe()}: the Redis password of spec.governance; the config is "
                "not updated until it exists",
            )
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
    if spec.mcp:
        entry["mcp"] = {server: sorted(set(tools)) for server, tools in sorted(spec.mcp.items())}
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


def redis_password_secret(gateway: Mapping[str, Any]) -> str | None:
    """The Secret holding the gateway's Redis password, read leniently (an invalid spec is reported
    by the reconciliation; the secret index must not fail on it)."""
    spec = gateway.get("spec")
    governance = spec.get("governance") if isinstance(spec, Mapping) else None
    redis = governance.get("redis") if isinstance(governance, Mapping) else None
    ref = redis.get("passwordSecretRef") if isinstance(redis, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


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
