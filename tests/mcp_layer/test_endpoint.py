"""The gateway as an MCP server: /mcp with the SDK's client in both eras, per-key tools, a gateway
token, the Host allow-list, bundles, and two gateway processes answering one client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict

from asbru_gateway.core.headers import RequestHeaders
from asbru_gateway.core.identity import ClientCredential, Identity
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.errors import GatewayError
from asbru_gateway.plugins.base import PluginBase, ShortCircuit
from asbru_gateway.plugins.builtin import registry
from tests.gateway_server import run_gateway
from tests.mcp_layer.fixtures import config, toy, user
from tests.test_shutdown import _start


class KeySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    keys: dict[str, str] = {}
    """Key value -> virtual key name."""
    mcp: dict[str, dict[str, list[str]]] = {}
    """Virtual key name -> its own MCP allow-list (server -> tools)."""


class KeyAuth(PluginBase):
    """A stand-in for governance: virtual keys by value, each key's MCP allow-list as an attribute."""

    Settings = KeySettings

    async def authenticate(
        self, credential: ClientCredential | None, headers: RequestHeaders
    ) -> Identity | None:
        settings = self.settings
        assert isinstance(settings, KeySettings)
        if credential is None:
            return None
        name = settings.keys.get(credential.reveal())
        if name is None:
            raise GatewayError("unknown virtual key", status=401, type="authentication_error")
        return Identity(key=name, attributes={"mcp": settings.mcp[name]} if name in settings.mcp else {})

    async def pre_request(self, request: LLMRequest) -> ShortCircuit | None:
        request.identity = await self.authenticate(request.credential, request.headers)
        return None


@pytest.fixture(autouse=True)
def _key_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.PLUGIN_TYPES, "test-keys", KeyAuth)


def _tools(url: str, *, mode: str = "auto", headers: dict[str, str] | None = None) -> list[str]:
    async def session() -> list[str]:
        async with (
            httpx2.AsyncClient(headers=headers or {}) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    return asyncio.run(session())


def _call(url: str, name: str, arguments: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    async def session() -> str:
        async with (
            httpx2.AsyncClient(headers=headers or {}) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            try:
                result = await client.call_tool(name, arguments)
            except MCPError as error:
                return f"refused: {error.message}"
            return result.content[0].text  # type: ignore[union-attr]

    return asyncio.run(session())


TOY_TOOLS = ["toy__add", "toy__crash", "toy__fail", "toy__hang", "toy__shout"]


def test_both_eras_list_and_call() -> None:
    with run_gateway(config(toy(), serve={"enabled": True})) as gateway:
        url = gateway.url + "/mcp"
        assert _tools(url, mode="auto") == TOY_TOOLS
        assert _tools(url, mode="legacy") == TOY_TOOLS
        assert _call(url, "toy__add", {"a": 20, "b": 22}) == "42"


def test_tools_per_virtual_key() -> None:
    keys = {
        "keys": {"sk-alice": "alice", "sk-bob": "bob", "sk-carol": "carol"},
        "mcp": {"carol": {"toy": ["shout"]}},
    }
    grants = {"virtual_keys": [{"key": "alice", "tools": ["add", "shout"]}, {"key": "bob", "tools": []}]}
    plugins = [{"name": "keys", "type": "test-keys", "settings": keys}]
    with run_gateway(config(toy(access=grants), plugins=plugins, serve={"enabled": True})) as gateway:
        url = gateway.url + "/mcp"
        assert _tools(url, headers={"authorization": "Bearer sk-alice"}) == ["toy__add", "toy__shout"]
        assert _tools(url, headers={"authorization": "Bearer sk-bob"}) == []  # deny by default
        assert _tools(url, headers={"authorization": "Bearer sk-carol"}) == [
            "toy__shout"
        ]  # the key's own list
        carol = {"authorization": "Bearer sk-carol"}
        assert _call(url, "toy__add", {"a": 1, "b": 1}, headers=carol) == "refused: Unknown tool: toy__add"
        assert _call(url, "toy__shout", {"text": "hi"}, headers=carol) == "HI"
        refused = httpx.post(url, json={}, headers={"authorization": "Bearer sk-mallory"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert httpx.post(url, json={}).status_code == 401  # an authenticator is on: no key, no tools

        # the same grants in chat requests: alice's call runs, carol's is not offered (handed back)
        def chat(key: str, text: str) -> dict[str, Any]:
            body = {"model": "echo/m", "messages": user(text)}
            response = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers={"x-bf-vk": key})
            return response.json()["choices"][0]  # type: ignore[no-any-return]

        assert (
            chat("sk-alice", '/tool toy__add {"a": 1, "b": 2}')["message"]["content"]
            == "toy__add returned: 3"
        )
        assert chat("sk-carol", '/tool toy__add {"a": 1, "b": 2}')["finish_reason"] == "tool_calls"


def test_request_headers_narrow_the_tools() -> None:
    with run_gateway(config(toy(), toy("other"), serve={"enabled": True})) as gateway:

        def chat(headers: dict[str, str]) -> str:
            body = {"model": "echo/m", "messages": user('/tool toy__add {"a": 1, "b": 2}')}
            response = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
            return response.json()["choices"][0]["finish_reason"]  # type: ignore[no-any-return]

        assert chat({}) == "stop"  # run by the gateway
        assert chat({"x-bf-mcp-include-clients": "other"}) == "tool_calls"  # not offered: handed back
        assert chat({"x-bf-mcp-include-tools": "toy/add"}) == "stop"
        assert chat({"x-bf-mcp-include-tools": "toy-shout"}) == "tool_calls"  # Bifrost's older form
        assert chat({"x-asbru-mcp-tools": "toy__*"}) == "stop"
        assert chat({"x-asbru-mcp-servers": ""}) == "tool_calls"  # present and empty: nothing


def test_gateway_token_when_governance_is_off() -> None:
    os.environ["ASBRU_TEST_MCP_TOKEN"] = "gw-token-0123456789"
    serve = {"enabled": True, "token": "env:ASBRU_TEST_MCP_TOKEN"}
    with run_gateway(config(toy(), serve=serve)) as gateway:
        url = gateway.url + "/mcp"
        assert httpx.post(url, json={}).status_code == 401
        assert _tools(url, headers={"authorization": "Bearer gw-token-0123456789"}) == TOY_TOOLS
        execute = httpx.post(gateway.url + "/v1/mcp/tool/execute", json={"function": {"name": "toy__add"}})
        assert execute.status_code == 401


def test_host_allow_list_and_bundles() -> None:
    bundles = [{"name": "math", "tools": ["toy/add"]}, {"name": "loud", "tools": ["toy/sh*", "other/*"]}]
    with run_gateway(config(toy(), toy("other"), serve={"enabled": True, "bundles": bundles})) as gateway:
        assert _tools(gateway.url + "/mcp/math") == ["toy__add"]
        assert _tools(gateway.url + "/mcp/loud") == [
            "other__" + t.removeprefix("toy__") for t in TOY_TOOLS
        ] + ["toy__shout"]
        assert httpx.post(gateway.url + "/mcp/nope", json={}).status_code == 404
        evil = httpx.post(gateway.url + "/mcp", json={}, headers={"host": "evil.example:80"})
        assert evil.status_code == 421


def test_mcp_is_off_unless_enabled() -> None:
    with run_gateway(config(toy())) as gateway:
        assert httpx.post(gateway.url + "/mcp", json={}).status_code == 404


# --- two gateway processes, one client ----------------------------------------------------------------


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[list[str]]:
    """Two `asbru serve` processes on one config, as two replicas behind one Service."""
    started = [_start(tmp_path, config(toy(), serve={"enabled": True})) for _ in range(2)]
    try:
        yield [url for _, url in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(15)
            assert process.stdout is not None
            process.stdout.close()


class _Alternating(httpx2.AsyncBaseTransport):
    """Sends each request to the next gateway in turn, as a Service without affinity would."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._inner = httpx2.AsyncHTTPTransport()
        self.seen: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self._ports[len(self.seen) % len(self._ports)]
        self.seen.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_two_gateway_processes_serve_one_client(two_gateways: list[str], mode: str) -> None:
    ports = [int(url.rsplit(":", 1)[1]) for url in two_gateways]
    transport = _Alternating(ports)

    async def session() -> tuple[list[str], str]:
        async with (
            httpx2.AsyncClient(transport=transport) as http,
            Client(streamable_http_client(two_gateways[0] + "/mcp", http_client=http), mode=mode) as client,
        ):
            names = sorted(tool.name for tool in (await client.list_tools()).tools)
            results = [await client.call_tool("toy__add", {"a": n, "b": 1}) for n in range(3)]
            return names, ",".join(result.content[0].text for result in results)  # type: ignore[union-attr]

    names, sums = asyncio.run(session())
    assert names == TOY_TOOLS and sums == "1,2,3"
    assert set(transport.seen) == set(ports)  # both processes answered, handshake and calls mixed
