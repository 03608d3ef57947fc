"""The acceptance example, as the docs show it: examples/mcp/asbru.yaml, the time tool over stdio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from mcp import Client
from openai import OpenAI

from asbru_gateway.config.loader import load_config_file
from tests.gateway_server import RunningGateway, run_gateway
from tests.mcp_layer.fixtures import EXAMPLE, TIME_TOOL, UTC_TOOL_CALL, user


@pytest.fixture(scope="module")
def gateway() -> RunningGateway:
    with run_gateway(load_config_file(EXAMPLE)) as running:
        yield running  # type: ignore[misc]


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gateway.base_url, api_key="unused") as sdk:
        yield sdk


def _now_hour() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H")


def test_agent_answers_with_the_current_utc_time(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="echo/agent", messages=user(UTC_TOOL_CALL))  # type: ignore[arg-type]
    answer = raw.parse()
    text = answer.choices[0].message.content or ""
    assert TIME_TOOL in text
    assert _now_hour() in text and '"timezone": "UTC"' in text
    assert raw.headers["x-asbru-agent-steps"] == "1"
    assert answer.usage is not None and answer.usage.total_tokens > 0


def test_agent_streams_the_current_utc_time_and_shows_the_step(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="echo/agent",
        messages=user(UTC_TOOL_CALL),
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    text, steps, usage = "", [], None
    for chunk in stream:
        extra = chunk.model_extra or {}
        if "mcp_call" in extra:
            steps.append(extra["mcp_call"])
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert _now_hour() in text
    assert [step["status"] for step in steps] == ["in_progress", "completed"]
    assert steps[0]["server_label"] == "time" and steps[0]["name"] == "get_current_time"
    assert _now_hour() in steps[1]["output"]
    assert usage is not None and usage.total_tokens > 2  # both model calls


def test_responses_stream_shows_the_time_step_and_the_answer(gateway: RunningGateway) -> None:
    with (
        OpenAI(base_url=gateway.base_url, api_key="unused") as client,
        client.responses.stream(model="echo/agent", input=UTC_TOOL_CALL) as stream,
    ):
        kinds = [event.type for event in stream]
        response = stream.get_final_response()
    assert "response.mcp_call.in_progress" in kinds and "response.mcp_call.completed" in kinds
    step, message = response.output
    assert step.type == "mcp_call" and (step.server_label, step.name) == ("time", "get_current_time")
    assert step.status == "completed" and _now_hour() in (step.output or "")
    assert message.type == "message" and _now_hour() in response.output_text


def test_completions_answer_with_the_current_utc_time(gateway: RunningGateway) -> None:
    with OpenAI(base_url=gateway.base_url, api_key="unused") as client:
        answer = client.completions.create(model="echo/agent", prompt=UTC_TOOL_CALL)
    assert TIME_TOOL in answer.choices[0].text and _now_hour() in answer.choices[0].text


def test_an_mcp_client_lists_and_calls_the_time_tools(gateway: RunningGateway) -> None:
    async def session() -> tuple[list[str], str]:
        async with Client(gateway.url + "/mcp") as client:
            tools = await client.list_tools()
            result = await client.call_tool(TIME_TOOL, {"timezone": "UTC"})
            return [tool.name for tool in tools.tools], result.content[0].text  # type: ignore[union-attr]

    names, text = asyncio.run(session())
    assert set(names) == {"time__get_current_time", "time__convert_time"}
    assert _now_hour() in text
