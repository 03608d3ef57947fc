"""Governance decides who gets which MCP tools: the acceptance example plus mcp-server-time.

``limited`` is granted the time server's tools (its ``mcp`` allow-list), ``budget`` nothing: the
first sees and calls them through ``/mcp`` (the SDK's client) and in chat tool injection, the second
sees none (deny by default), and a bad key is refused (401) before any tool is listed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.gateway_server import RunningGateway, run_gateway
from tests.mcp_layer.fixtures import TIME_TOOL, UTC_TOOL_CALL, time_server, user
from tests.redis_server import RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/governance/asbru.yaml"
LIMITED, BUDGET = "vk-limited-mcp-0123456789", "vk-budget-mcp-0123456789"
TIME_TOOLS = ["time__convert_time", "time__get_current_time"]


@pytest.fixture(scope="module")
def gateway(redis_module: RedisServer) -> Iterator[RunningGateway]:
    config: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    limited = next(key for key in config["governance"]["virtual_keys"] if key["name"] == "limited")
    limited["mcp"] = {"time": ["*"]}
    config["mcp"] = {"servers": [time_server(args=["--local-timezone", "UTC"])], "serve": {"enabled": True}}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ASBRU_REDIS_URL", redis_module.url)
        env.setenv("VK_LIMITED", LIMITED)
        env.setenv("VK_BUDGET", BUDGET)
        with run_gateway(config) as running:
            yield running


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _mcp(url: str, key: str, call: str | None = None) -> tuple[list[str], str | None]:
    """The tools the key's MCP client lists, and the text of one call of ``call`` (UTC)."""

    async def session() -> tuple[list[str], str | None]:
        async with (
            httpx2.AsyncClient(headers=_bearer(key)) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            names = sorted(tool.name for tool in (await client.list_tools()).tools)
            if call is None:
                return names, None
            result = await client.call_tool(call, {"timezone": "UTC"})
            return names, result.content[0].text  # type: ignore[union-attr]

    return asyncio.run(session())


def test_a_key_granted_the_time_server_lists_and_calls_its_tools(gateway: RunningGateway) -> None:
    names, text = _mcp(gateway.url + "/mcp", LIMITED, call=TIME_TOOL)
    assert names == TIME_TOOLS
    assert text is not None and datetime.now(UTC).strftime("%Y-%m-%dT%H") in text


def test_a_key_without_grants_sees_no_tools(gateway: RunningGateway) -> None:
    assert _mcp(gateway.url + "/mcp", BUDGET) == ([], None)


def test_a_bad_or_missing_key_is_refused(gateway: RunningGateway) -> None:
    url = gateway.url + "/mcp"
    refused = httpx.post(url, json={}, headers=_bearer("vk-nobody-0123456789"))
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "vk-nobody" not in refused.text
    assert httpx.post(url, json={}).status_code == 401
    listed = httpx.get(gateway.url + "/v1/mcp/servers", headers=_bearer("vk-nobody-0123456789"))
    assert listed.status_code == 401


def test_chat_tool_injection_follows_the_same_grants(gateway: RunningGateway) -> None:
    """Echo calls the tool: for ``limited`` the gateway runs it (agent mode); for ``budget`` it is
    not offered, so the call goes back to the client."""

    def chat(key: str) -> dict[str, Any]:
        body = {"model": "echo/agent", "messages": user(UTC_TOOL_CALL)}
        response = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=_bearer(key))
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]  # type: ignore[no-any-return]

    answered = chat(LIMITED)
    assert answered["finish_reason"] == "stop"
    assert datetime.now(UTC).strftime("%Y-%m-%dT%H") in answered["message"]["content"]
    assert chat(BUDGET)["finish_reason"] == "tool_calls"
