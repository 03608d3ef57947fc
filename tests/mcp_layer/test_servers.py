"""Real MCP servers behind the gateway: over stdio (mcp-server-time, mcp-server-git, the npm
server-everything, the toy server), streamable HTTP in both protocol eras, legacy SSE; servers that
crash, hang, fail or are down; connections kept across reloads."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway_server import RunningGateway, run_gateway
from tests.mcp_layer.fixtures import EVERYTHING, config, time_server, toy, user
from tests.mcp_layer.toy_server import serve_http, serve_sse
from tests.waiting import wait_until


def _execute(gateway: RunningGateway, name: str, arguments: str = "{}") -> httpx.Response:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return httpx.post(gateway.url + "/v1/mcp/tool/execute", json=call, timeout=30)


def _chat(gateway: RunningGateway, text: str) -> httpx.Response:
    body = {"model": "echo/m", "messages": user(text)}
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=30)


def _status(gateway: RunningGateway) -> dict[str, Any]:
    return httpx.get(gateway.url + "/v1/mcp/servers", timeout=10).json()["servers"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("repo")
    for command in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *command], cwd=path, check=True)
    (path / "hello.txt").write_text("hello\n")
    return path


@pytest.fixture(scope="module")
def gateway(repository: Path) -> Iterator[RunningGateway]:
    assert EVERYTHING.exists(), f"{EVERYTHING} is missing: scripts/test.sh installs it from npm"
    with serve_http() as http_url, serve_sse() as sse_url:
        servers = [
            time_server(),
            {
                "name": "git",
                "transport": "stdio",
                "command": "mcp-server-git",
                "args": ["--repository", str(repository)],
            },
            {"name": "everything", "transport": "stdio", "command": str(EVERYTHING), "args": ["stdio"]},
            {"name": "modern", "transport": "http", "url": http_url, "protocol": "modern"},
            {"name": "legacy", "transport": "http", "url": http_url, "protocol": "legacy"},
            {"name": "auto", "transport": "http", "url": http_url},
            {"name": "sse", "transport": "sse", "url": sse_url},
            toy(timeouts={"call_s": 1, "health_interval_s": 60, "backoff_initial_s": 0.05}),
            {
                "name": "down",
                "transport": "http",
                "url": "http://127.0.0.1:9/mcp",
                "timeouts": {"connect_s": 0.5},
            },
        ]
        with run_gateway(config(*servers)) as running:
            yield running


def test_every_server_connects_in_its_era(gateway: RunningGateway) -> None:
    status = _status(gateway)
    assert status["modern"]["protocol_version"] == "2026-07-28"
    assert status["legacy"]["protocol_version"] == "2025-11-25"
    assert status["auto"]["protocol_version"] == "2026-07-28"
    assert status["sse"]["protocol_version"] == "2025-11-25"
    for name in ("time", "git", "everything", "modern", "legacy", "auto", "sse", "toy"):
        assert status[name]["connected"], (name, status[name])
        assert status[name]["tool_count"] > 0
    assert status["down"]["connected"] is False and status["down"]["last_error"]


def test_tools_run_over_every_transport(gateway: RunningGateway) -> None:
    for server in ("modern", "legacy", "auto", "toy"):
        response = _execute(gateway, f"{server}__add", '{"a": 2, "b": 40}')
        assert response.json()["content"] == "42", server
    assert _execute(gateway, "sse__shout", '{"text": "hi"}').json()["content"] == "HI"


def test_mcp_server_git_over_stdio(gateway: RunningGateway, repository: Path) -> None:
    response = _execute(gateway, "git__git_status", f'{{"repo_path": "{repository}"}}')
    assert response.status_code == 200, response.text
    assert "hello.txt" in response.json()["content"]


def test_server_everything_over_stdio(gateway: RunningGateway) -> None:
    response = _execute(gateway, "everything__echo", '{"message": "ping"}')
    assert response.status_code == 200, response.text
    assert "ping" in response.json()["content"]


def test_a_server_that_is_down_fails_no_request_that_does_not_use_it(gateway: RunningGateway) -> None:
    started = time.monotonic()
    response = _chat(gateway, "plain question")
    assert (
        response.status_code == 200
        and response.json()["choices"][0]["message"]["content"] == "plain question"
    )
    assert time.monotonic() - started < 1
    assert _execute(gateway, "down__anything").status_code == 404  # its tools are not offered while down


def test_a_tool_error_reaches_the_model(gateway: RunningGateway) -> None:
    answer = _chat(gateway, '/tool toy__fail {"reason": "nope"}').json()
    text = answer["choices"][0]["message"]["content"]
    assert text.startswith("toy__fail returned: Error: ") and text.endswith("nope")


def test_a_hanging_tool_times_out_and_the_model_hears_it(gateway: RunningGateway) -> None:
    started = time.monotonic()
    answer = _chat(gateway, "/tool toy__hang {}").json()
    assert time.monotonic() - started < 5
    assert "timed out after 1 s" in answer["choices"][0]["message"]["content"]
    assert _execute(gateway, "toy__hang").status_code == 504


def test_a_server_that_crashes_mid_loop_is_an_answer_then_comes_back(gateway: RunningGateway) -> None:
    answer = _chat(gateway, "/tool toy__crash {}").json()
    text = answer["choices"][0]["message"]["content"]
    assert text == "toy__crash returned: MCP server 'toy' closed the connection during 'crash'"
    wait_until(
        lambda: _execute(gateway, "toy__add", '{"a": 1, "b": 1}').status_code == 200,
        "the toy server is back",
        timeout_s=15,
    )


def test_tool_calls_are_counted(gateway: RunningGateway) -> None:
    _execute(gateway, "toy__add", '{"a": 1, "b": 2}')
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'asbru_mcp_tool_calls_total{outcome="ok",server="toy",tool="add"}' in metrics
    assert 'asbru_mcp_tool_call_seconds_count{server="toy",tool="add"}' in metrics
    assert 'asbru_mcp_server_connected{server="down"} 0.0' in metrics


def test_a_reload_keeps_unchanged_connections(caplog: pytest.LogCaptureFixture) -> None:
    with run_gateway(config(toy())) as gateway:
        before = dict(gateway.app.gateway.mcp._live)
        gateway.apply(config(toy(auto_execute=[], tools={"exclude": ["crash"]})))  # not a connection field
        assert gateway.app.gateway.mcp._live["toy"][1] is before["toy"][1]
        assert _execute(gateway, "toy__crash").status_code == 404
        gateway.apply(config(toy(env={"X": "1"})))  # a connection field: a new subprocess
        assert gateway.app.gateway.mcp._live["toy"][1] is not before["toy"][1]
        assert _execute(gateway, "toy__add", '{"a": 1, "b": 1}').json()["content"] == "2"
        wait_until(lambda: before["toy"][1].status.connected is False, "the replaced connection closed")


def test_content_is_logged_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="asbru_gateway.mcp.hub")
    for log_content in (False, True):
        caplog.clear()
        with run_gateway(config(toy(), log_content=log_content)) as gateway:
            _execute(gateway, "toy__shout", '{"text": "secret words"}')
        lines = [r.getMessage() for r in caplog.records if "MCP toy/shout ok" in r.getMessage()]
        assert len(lines) == 1
        assert ("secret words" in lines[0]) is log_content and ("SECRET WORDS" in lines[0]) is log_content
