"""LLMMCPServer: rendered into the gateway config (pure), and end to end with kmock: the CR reaches a
gateway pod, which connects, and the operator writes what the pod reports into the CR's status."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asbru_gateway.config.mcp import McpTransport
from asbru_operator.kubeapi import GATEWAYS, MCP_SERVERS, PROVIDERS, ApiResource
from asbru_operator.mcp_status import summarize
from asbru_operator.render.config import Sources, render_config
from tests.gateway_server import RunningGateway
from tests.operator import fixtures
from tests.operator.fixtures import mcp_server
from tests.operator.kmock_cluster import SECRETS, Cluster, eventually
from tests.operator.test_cr_to_serving import _start_pod

GITHUB = mcp_server(
    "github",
    url="https://mcp.example.com/mcp",
    secretHeaders=[
        {"name": "Authorization", "prefix": "Bearer ", "secretKeyRef": {"name": "tokens", "key": "gh"}}
    ],
    autoExecute=["get_*"],
    virtualKeys=[{"key": "team-a", "tools": ["get_*"]}],
    anonymous=False,
    timeouts={"callSeconds": 5},
)
TIME = mcp_server("time", transport="stdio", command="mcp-server-time", autoExecute=["*"])
IN_CLUSTER = mcp_server("search", serviceRef={"name": "search-mcp", "port": 8080})


def _sources(*servers: dict[str, Any], gateway: dict[str, Any] | None = None, **secrets: Any) -> Sources:
    return Sources(
        gateway=gateway or fixtures.gateway(),
        secrets=secrets or {"tokens": {"gh": "ghp-secret-token"}},
        mcp_servers=list(servers),
    )


def test_servers_render_into_the_mcp_section_with_secrets_as_references() -> None:
    gateway = fixtures.gateway(
        mcp={"serve": True, "maxDepth": 3, "bundles": [{"name": "ro", "tools": ["github/get_*"]}]}
    )
    rendered = render_config(_sources(GITHUB, TIME, IN_CLUSTER, gateway=gateway))
    mcp = rendered.config.mcp
    assert mcp is not None
    github, search, time = mcp.servers
    assert github.url == "https://mcp.example.com/mcp" and github.transport == McpTransport.HTTP
    assert github.secret_headers == {"Authorization": "secret:mcp.github.h0"}
    assert rendered.secret_data["mcp.github.h0"] == "Bearer ghp-secret-token"
    assert "ghp-secret-token" not in rendered.config.canonical_json().decode()
    assert github.access.anonymous is False and github.access.virtual_keys[0].key == "team-a"
    assert github.timeouts.call_s == 5 and github.auto_execute == ("get_*",)
    assert search.url == "http://search-mcp.default.svc:8080/mcp"
    assert time.command == "mcp-server-time" and time.transport == McpTransport.STDIO
    assert mcp.agent.max_depth == 3 and mcp.serve.enabled and mcp.serve.bundles[0].name == "ro"
    assert "gw.default.svc:*" in mcp.serve.allowed_hosts and "127.0.0.1:*" in mcp.serve.allowed_hosts


def test_no_servers_and_no_gateway_mcp_render_no_section() -> None:
    rendered = render_config(_sources())
    assert rendered.config.mcp is None
    assert '"mcp"' not in rendered.config.canonical_json().decode()


def test_a_missing_secret_leaves_that_server_out_as_an_unresolved_reference() -> None:
    rendered = render_config(_sources(GITHUB, TIME, other={"x": "y"}))
    assert rendered.config.mcp is not None
    assert [server.name for server in rendered.config.mcp.servers] == ["time"]  # the others keep serving
    (problem,) = rendered.left_out
    assert (problem.kind, problem.name, problem.reason, problem.unresolved) == (
        "LLMMCPServer",
        "github",
        "SecretNotFound",
        True,
    )
    assert "Secret 'tokens' not found (LLMMCPServer 'github')" in problem.message


def test_selectors_choose_the_servers() -> None:
    elsewhere = mcp_server(
        "elsewhere", url="https://x.example/mcp", gatewaySelector={"matchLabels": {"env": "prod"}}
    )
    labelled = {**TIME, "metadata": {**TIME["metadata"], "labels": {"tier": "a"}}}
    gateway = fixtures.gateway(mcpSelector={"matchLabels": {"tier": "a"}})
    mcp = render_config(_sources(elsewhere, labelled, IN_CLUSTER, gateway=gateway)).config.mcp
    assert mcp is not None and [server.name for server in mcp.servers] == ["time"]


def test_an_invalid_server_is_left_out_and_named() -> None:
    bad = mcp_server("Bad_Name", url="https://x.example/mcp")
    rendered = render_config(_sources(bad, TIME))
    assert rendered.config.mcp is not None
    assert [server.name for server in rendered.config.mcp.servers] == ["time"]
    assert [(p.kind, p.name, p.reason) for p in rendered.left_out] == [
        ("LLMMCPServer", "Bad_Name", "Invalid")
    ]


def test_status_summarizes_the_pods() -> None:
    up = {"connected": True, "tool_count": 2, "last_error": None, "protocol_version": "2026-07-28"}
    down = {"connected": False, "tool_count": 0, "last_error": "ConnectError: refused"}
    status = summarize("time", [{"time": up}, {"time": down}], generation=4, old={})
    assert (
        status["connected"] == "1/2"
        and status["toolCount"] == 2
        and status["lastError"] == "ConnectError: refused"
    )
    assert (
        status["conditions"][0]["status"] == "False"
        and "1 of 2 pods connected" in status["conditions"][0]["message"]
    )
    assert summarize("time", [{"time": up}], generation=4, old={})["conditions"][0]["status"] == "True"


async def test_cr_to_connected_status(control_plane: tuple[Cluster, dict[str, RunningGateway]]) -> None:
    cluster, pods = control_plane
    await cluster.create(SECRETS, fixtures.secret("echo-keys", **{"api-key": "sk-echo-000000"}))
    await cluster.create(PROVIDERS, fixtures.provider("echo", secret="echo-keys", type="echo", baseURL=None))
    await cluster.create(MCP_SERVERS, TIME)
    await cluster.create(GATEWAYS, fixtures.gateway(replicas=1, mcp={"serve": True}))
    deployment = await eventually(lambda: cluster.get(ApiResource("apps", "v1", "deployments"), "gw"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    with contextlib.ExitStack() as stack:
        gateway = await _start_pod(cluster, pods, stack, "gw-0", labels)
        try:

            async def connected() -> dict[str, Any] | None:
                body = await cluster.get(MCP_SERVERS, "time")
                status = (body or {}).get("status") or {}
                return status if status.get("connected") == "1/1" else None

            status = await eventually(connected, within_s=30)
            assert status["toolCount"] == 2 and status["protocolVersion"] == "2026-07-28"
            assert status["conditions"][0]["type"] == "Ready" and status["conditions"][0]["status"] == "True"
            snapshot = gateway.app.gateway.current
            assert snapshot is not None and snapshot.mcp is not None and snapshot.mcp.config.serve.enabled
        finally:
            await asyncio.to_thread(stack.close)
