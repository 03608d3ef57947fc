"""Which Secrets the operator watches: every one the rendered config reads (handlers.secret).

A Secret nobody indexed never reaches the event handler, and its rotation waited for the periodic
re-render (5 minutes). The kmock tests (``test_operator_kmock``) show rotations end to end; here the
indexes and the filter themselves, so that a reference kind left out of them fails a test even when
some other event happens to re-render the gateway in time.
"""

from __future__ import annotations

from typing import Any

from asbru_operator.handlers import secret
from tests.operator import fixtures
from tests.operator.fixtures import NS, mcp_server


def _referenced(name: str, **indexes: dict[tuple[str, str], str]) -> bool:
    every = {secret.INDEX: {}, secret.MCP_INDEX: {}, secret.GATEWAY_INDEX: {}, **indexes}
    return secret.is_referenced(namespace=NS, name=name, **every)


def _index(function: Any, body: dict[str, Any]) -> dict[tuple[str, str], str]:
    index: dict[tuple[str, str], str] = function(namespace=NS, name=body["metadata"]["name"], body=body)
    return index


def test_the_gateways_redis_password_and_mcp_token_are_watched() -> None:
    redis = {"url": "redis://redis:6379/0", "passwordSecretRef": {"name": "redis-auth", "key": "pw"}}
    gateway = fixtures.gateway(
        governance={"redis": redis}, mcp={"tokenSecretRef": {"name": "mcp-token", "key": "t"}}
    )
    index = _index(secret.gateway_secret_refs, gateway)
    assert index == {(NS, "redis-auth"): "gw", (NS, "mcp-token"): "gw"}
    assert _referenced("redis-auth", **{secret.GATEWAY_INDEX: index})
    assert not _referenced("unrelated", **{secret.GATEWAY_INDEX: index})


def test_an_mcp_servers_secret_headers_and_environment_are_watched() -> None:
    server = mcp_server(
        "github",
        url="https://mcp.example.com/mcp",
        secretHeaders=[{"name": "Authorization", "secretKeyRef": {"name": "gh-token", "key": "t"}}],
        secretEnv=[{"name": "API_KEY", "secretKeyRef": {"name": "gh-env", "key": "k"}}],
    )
    index = _index(secret.mcp_secret_refs, server)
    assert index == {(NS, "gh-token"): "github", (NS, "gh-env"): "github"}
    assert _referenced("gh-env", **{secret.MCP_INDEX: index})


def test_an_invalid_gateway_spec_indexes_nothing_instead_of_failing() -> None:
    gateway = fixtures.gateway(governance={"redis": "redis://r:6379"})
    assert _index(secret.gateway_secret_refs, gateway) == {}
