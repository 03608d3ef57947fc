"""Rendering virtual keys and teams (pure): salted hashes only, refs, teams, Redis; key status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from asbru_gateway.governance.keys import key_hash, parse_hash
from asbru_operator.render.config import GatewayRefsError, Problem, RenderError, Sources, render_config
from asbru_operator.render.key_status import degraded_check, key_checks, usage_columns
from tests.operator import fixtures

GOVERNANCE = {"requireVirtualKey": True}


def key(name: str = "alice", **spec: Any) -> dict[str, Any]:
    return {"kind": "LLMVirtualKey", "metadata": {"name": name, "namespace": fixtures.NS}, "spec": spec}


def sources(gateway: dict[str, Any], *keys: dict[str, Any], **extra: Any) -> Sources:
    secrets = {
        "alice-virtual-key": {"key": "sk-asbru-value-one"},
        "bob-virtual-key": {"key": "sk-asbru-value-two"},
    }
    return Sources(
        gateway=gateway, virtual_keys=keys, secrets={**secrets, **extra.pop("secrets", {})}, **extra
    )


def test_only_a_salted_hash_reaches_the_config() -> None:
    rendered = render_config(
        sources(fixtures.gateway(governance=GOVERNANCE), key(budgets=[{"period": "day", "tokens": 5}]))
    )
    governance = rendered.config.governance
    assert governance is not None and governance.require_virtual_key
    (entry,) = governance.virtual_keys
    salt, digest = parse_hash(entry.hash or "")
    assert digest == key_hash(salt, "sk-asbru-value-one")
    assert "sk-asbru-value-one" not in rendered.config.canonical_json().decode()
    assert "sk-asbru-value-one" not in str(dict(rendered.secret_data))
    again = render_config(
        sources(fixtures.gateway(governance=GOVERNANCE), key(budgets=[{"period": "day", "tokens": 5}]))
    )
    assert again.config.revision == rendered.config.revision  # deterministic: one salt per gateway uid
    other = render_config(sources(fixtures.gateway("other", governance=GOVERNANCE), key()))
    assert other.config.governance is not None
    assert other.config.governance.virtual_keys[0].hash != entry.hash


def test_keys_are_ignored_until_the_gateway_opts_in() -> None:
    assert render_config(sources(fixtures.gateway(), key())).config.governance is None


def test_a_key_with_a_problem_is_left_out_and_the_others_served() -> None:
    """A missing Secret, an unknown or invalid team: that key alone is left out (so refused: fail
    closed), and says why; the gateway's other keys keep updating."""
    bad_team = {"kind": "LLMTeam", "metadata": {"name": "ops"}, "spec": {"budgets": [{"period": "day"}]}}
    rendered = render_config(
        sources(
            fixtures.gateway(governance=GOVERNANCE),
            key(),
            key("carol"),
            key("bob", team="eng"),
            key("dave", team="ops", secretRef={"name": "alice-virtual-key", "key": "key"}),
            key("erin", budgets=[{"period": "fortnight", "usd": 1}]),
            teams=[bad_team],
        )
    )
    governance = rendered.config.governance
    assert governance is not None and [k.name for k in governance.virtual_keys] == ["alice"]
    reasons = {problem.name: problem.reason for problem in rendered.left_out}
    assert reasons == {
        "carol": "SecretNotFound",
        "bob": "TeamNotFound",
        "dave": "TeamNotServed",
        "erin": "Invalid",
    }
    carol = next(p for p in rendered.left_out if p.name == "carol")
    assert carol == Problem(
        "LLMVirtualKey",
        "carol",
        "SecretNotFound",
        "Secret 'carol-virtual-key' not found (LLMVirtualKey 'carol')",
        unresolved=True,
    )
    assert all("sk-asbru" not in p.message for p in rendered.left_out)


def test_a_missing_redis_password_keeps_the_last_config() -> None:
    """Without its Redis password governance cannot count across replicas, and leaving governance
    out would open the gateway: nothing is rendered until the Secret exists."""
    governance = {
        **GOVERNANCE,
        "redis": {"url": "redis://r:6379/0", "passwordSecretRef": {"name": "redis", "key": "pw"}},
    }
    with pytest.raises(GatewayRefsError, match="Secret 'redis' not found") as caught:
        render_config(sources(fixtures.gateway(governance=governance), key()))
    assert caught.value.reason == "SecretNotFound"


def test_an_invalid_governance_spec_is_invalid() -> None:
    governance = {**GOVERNANCE, "prices": [{"model": "x", "inputPerMtok": -1, "outputPerMtok": 1}]}
    with pytest.raises(RenderError):
        render_config(sources(fixtures.gateway(governance=governance), key()))


def test_governance_is_left_out_for_pods_of_an_older_schema() -> None:
    """Pods that read only an older config schema get the config without governance (the compat
    rule); the gateway says so (Degraded=SchemaTooOld) until every pod reads it."""
    rendered = render_config(sources(fixtures.gateway(governance=GOVERNANCE), key()), schema_minor=2)
    assert rendered.config.governance is None and rendered.config.schema_minor == 2
    check = degraded_check({"replicas": 1, "governance": {}}, rendered.config.schema_minor)
    assert check.ok is True and check.reason == "SchemaTooOld"


def test_teams_redis_password_and_user_secret() -> None:
    team = {
        "kind": "LLMTeam",
        "metadata": {"name": "eng"},
        "spec": {"budgets": [{"period": "month", "usd": 5}]},
    }
    governance = {
        **GOVERNANCE,
        "redis": {"url": "redis://redis:6379/0", "passwordSecretRef": {"name": "redis", "key": "pw"}},
    }
    rendered = render_config(
        sources(
            fixtures.gateway(governance=governance),
            key(team="eng", mcp={"time": ["*", "*"]}),
            key("bob", secretRef={"name": "mine", "key": "value"}),
            teams=[team],
            secrets={"redis": {"pw": "redis-pass"}, "mine": {"value": "sk-user-own"}},
        )
    )
    config = rendered.config.governance
    assert config is not None and config.redis is not None
    assert config.redis.password == "secret:governance.redis-password"
    assert rendered.secret_data["governance.redis-password"] == "redis-pass"
    assert [t.name for t in config.teams] == ["eng"]
    alice = next(k for k in config.virtual_keys if k.name == "alice")
    assert alice.mcp == {"time": ("*",)}
    bob = next(k for k in config.virtual_keys if k.name == "bob")
    assert bob.mcp == {}
    salt, digest = parse_hash(bob.hash or "")
    assert digest == key_hash(salt, "sk-user-own")


def _view(*limits: dict[str, Any]) -> dict[str, Any]:
    return {"limits": list(limits), "usage": {"month": {"usd": 1.5}}}


def _limit(name: str, kind: str, metric: str, quota: float, used: float) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "metric": metric,
        "window": "month",
        "calendar": True,
        "quota": quota,
        "used": used,
        "remaining": max(0, quota - used),
    }


def test_status_columns_and_conditions() -> None:
    usd = _limit("key-usd-month-c", "budget", "usd", 5, 1.25)
    tokens = _limit("key-tokens-month-c", "budget", "tokens", 1000, 1000)
    team = _limit("team-usd-month-c", "budget", "usd", 50, 2)
    assert usage_columns(_view(tokens, usd, team)) == {
        "spend": "$1.25",
        "budget": "$5.00/month",
        "remaining": "$3.75",
    }
    assert usage_columns(_view(tokens, usd, team), own="team")["budget"] == "$50.00/month"
    assert usage_columns(_view(_limit("key-requests-minute", "rate_limit", "requests", 10, 3))) == {
        "spend": "$1.50 this month",
        "remaining": "7 requests/month",
    }
    over = key_checks({}, _view(tokens, usd))
    assert over["WithinBudget"].ok is False and "key-tokens-month-c" in over["WithinBudget"].message
    assert key_checks({"disabled": True}, None)["Active"].reason == "Disabled"
    expired = key_checks({"expiresAt": "2020-01-01T00:00:00Z"}, None, now=datetime(2021, 1, 1, tzinfo=UTC))
    assert expired["Active"].reason == "Expired"
    assert degraded_check({"replicas": 3, "governance": {}}).ok is True
    assert degraded_check({"replicas": 3, "governance": {"redis": {"url": "redis://r"}}}).ok is False
    assert degraded_check({"replicas": 1, "governance": {}}).ok is False
