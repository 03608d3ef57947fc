"""Agent mode through every client dialect, JSON and streamed, and with its limits hit.

The model is echo (``/tool`` makes it call a tool, ``/loop`` makes it call one forever); the tools are
the toy server's, over stdio, auto-executed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types
from openai import OpenAI

from asbru_gateway.core.attempt import Attempt
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.plugins.base import Outcome, PluginBase
from asbru_gateway.plugins.builtin import registry
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder
from tests.gateway_server import RunningGateway, run_gateway
from tests.mcp_layer.fixtures import config, toy, user

ADD = '/tool toy__add {"a": 2, "b": 3}'
LOOP = '/loop toy__add {"a": 1, "b": 1}'


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    servers = [toy(), toy("slow", timeouts={"call_s": 30}), toy("manual", auto_execute=[])]
    with run_gateway(config(*servers, agent={"max_depth": 2, "max_time_s": 1.5})) as running:
        yield running


def _openai(gateway: RunningGateway) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def sdk(gateway: RunningGateway) -> Iterator[OpenAI]:
    """One client, closed at the end: a client left to the garbage collector may leave a socket open."""
    with _openai(gateway) as client:
        yield client


# --- OpenAI chat -------------------------------------------------------------------------------------


def test_openai_json(sdk: OpenAI) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="echo/m", messages=user(ADD))  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content == "toy__add returned: 5"
    assert raw.headers["x-asbru-agent-steps"] == "1"


def test_openai_stream(sdk: OpenAI) -> None:
    stream = sdk.chat.completions.create(model="echo/m", messages=user(ADD), stream=True)  # type: ignore[arg-type]
    text, steps, finishes = "", [], []
    for chunk in stream:
        if (chunk.model_extra or {}).get("mcp_call"):
            steps.append(chunk.model_extra["mcp_call"])  # type: ignore[index]
        for choice in chunk.choices:
            text += choice.delta.content or ""
            assert not choice.delta.tool_calls  # auto-executed calls are steps, not calls
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert text == "toy__add returned: 5"
    assert [(s["status"], s["output"]) for s in steps] == [("in_progress", None), ("completed", "5")]
    assert finishes == ["stop"]


# --- Anthropic ---------------------------------------------------------------------------------------


def _anthropic(gateway: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key="unused", max_retries=0)


def test_anthropic_json(gateway: RunningGateway) -> None:
    with _anthropic(gateway) as sdk:
        message = sdk.messages.create(model="echo/m", max_tokens=100, messages=user(ADD))  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "toy__add returned: 5"
    assert message.stop_reason == "end_turn"


def test_anthropic_stream(gateway: RunningGateway) -> None:
    with _anthropic(gateway) as sdk:
        events = list(sdk.messages.create(model="echo/m", max_tokens=100, messages=user(ADD), stream=True))  # type: ignore[arg-type]
    blocks = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert blocks[:2] == ["mcp_tool_use", "mcp_tool_result"] and blocks[-1] == "text"
    use = next(e.content_block for e in events if e.type == "content_block_start")
    assert use.model_extra["server_name"] == "toy" and use.model_extra["input"] == {"a": 2, "b": 3}  # type: ignore[union-attr,index]
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "toy__add returned: 5"
    assert events[-1].type == "message_stop"


# --- Gemini ------------------------------------------------------------------------------------------


def _genai(gateway: RunningGateway) -> genai.Client:
    return genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=gateway.url + "/genai"))


def test_gemini_json(gateway: RunningGateway) -> None:
    client = _genai(gateway)  # kept: the client closes its connections when dropped
    response = client.models.generate_content(model="echo/m", contents=ADD)
    assert response.text == "toy__add returned: 5"


def test_gemini_stream(gateway: RunningGateway) -> None:
    client = _genai(gateway)
    chunks = list(client.models.generate_content_stream(model="echo/m", contents=ADD))
    parts = [part for chunk in chunks for part in chunk.candidates[0].content.parts]  # type: ignore[index,union-attr]
    calls = [part.tool_call for part in parts if part.tool_call]
    responses = [part.tool_response for part in parts if part.tool_response]
    assert calls[0].args == {"a": 2, "b": 3} and responses[0].response == {"output": "5"}
    assert parts[0].part_metadata == {"mcp_call": {"server_label": "toy", "name": "add"}}
    assert "".join(part.text or "" for part in parts) == "toy__add returned: 5"


# --- OpenAI Responses --------------------------------------------------------------------------------


def test_responses_json_shows_each_step_as_an_mcp_call_item(sdk: OpenAI) -> None:
    raw = sdk.responses.with_raw_response.create(
        model="echo/m", input=ADD, instructions="Be brief.", metadata={"ticket": "7"}
    )
    response = raw.parse()
    assert raw.headers["x-asbru-agent-steps"] == "1"
    assert [item.type for item in response.output] == ["mcp_call", "message"]
    step = response.output[0]
    assert step.type == "mcp_call"
    assert (step.server_label, step.name, step.status, step.output, step.error) == (
        "toy",
        "add",
        "completed",
        "5",
        None,
    )
    assert json.loads(step.arguments) == {"a": 2, "b": 3}
    assert response.output_text == "toy__add returned: 5" and response.status == "completed"
    # the client's settings are echoed, though agent mode translated the request
    assert response.instructions == "Be brief." and response.metadata == {"ticket": "7"}
    assert response.usage is not None and response.usage.input_tokens == 1 + 3  # both model calls


def test_responses_stream_shows_each_step_as_it_happens(sdk: OpenAI) -> None:
    events = list(sdk.responses.create(model="echo/m", input=ADD, stream=True))
    kinds = [event.type for event in events]
    mcp = kinds.index("response.mcp_call_arguments.delta") - 1
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[mcp : mcp + 7] == [
        "response.output_item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
        "response.output_item.added",  # the answer's message, after the step
    ]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    added, done = events[mcp], events[mcp + 5]
    assert added.item.type == "mcp_call" and added.item.status == "in_progress"  # type: ignore[union-attr]
    assert done.item.type == "mcp_call" and done.item.output == "5"  # type: ignore[union-attr]
    assert (added.output_index, done.output_index) == (0, 0)  # type: ignore[union-attr]
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "toy__add returned: 5"
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["mcp_call", "message"]
    assert final.usage is not None and final.usage.input_tokens == 1 + 3


def test_responses_stream_helper_rebuilds_the_response_with_its_steps(sdk: OpenAI) -> None:
    with sdk.responses.stream(model="echo/m", input=ADD) as stream:
        response = stream.get_final_response()
    assert [item.type for item in response.output] == ["mcp_call", "message"]
    assert response.output_text == "toy__add returned: 5"


def test_responses_depth_limit_returns_the_pending_calls(sdk: OpenAI) -> None:
    raw = sdk.responses.with_raw_response.create(model="echo/m", input=LOOP)
    response = raw.parse()
    assert raw.headers["x-asbru-agent-stopped"] == "max_depth"
    kinds = [(item.type, getattr(item, "status", None)) for item in response.output]
    assert kinds == [
        ("mcp_call", "completed"),
        ("mcp_call", "completed"),
        ("function_call", "completed"),  # the client may run it (POST /v1/mcp/tool/execute)
        ("mcp_call", "incomplete"),
    ]
    left = response.output[3]
    assert left.type == "mcp_call" and left.error is not None
    assert left.error.type == "mcp_tool_execution_error"
    assert "agent mode stopped: max_depth" in str(left.error.content)


def test_responses_depth_limit_in_a_stream(sdk: OpenAI) -> None:
    with sdk.responses.stream(model="echo/m", input=LOOP) as stream:
        events = list(stream)
        response = stream.get_final_response()
    ended = [event.type for event in events if event.type.startswith("response.mcp_call.")]
    assert ended == ["response.mcp_call.in_progress", "response.mcp_call.completed"] * 2
    assert [(item.type, getattr(item, "status", None)) for item in response.output] == [
        ("mcp_call", "completed"),
        ("mcp_call", "completed"),
        ("function_call", "completed"),
        ("mcp_call", "incomplete"),
    ]


def test_responses_time_limit_in_a_stream(sdk: OpenAI) -> None:
    events = list(sdk.responses.create(model="echo/m", input="/tool slow__hang {}", stream=True))
    kinds = [event.type for event in events]
    assert "response.mcp_call.failed" in kinds
    failed = next(
        e.item for e in events if e.type == "response.output_item.done" and e.item.type == "mcp_call"
    )
    assert failed.status == "failed" and failed.error is not None  # type: ignore[union-attr]
    message = str(failed.error.content)  # type: ignore[union-attr]
    # The time runs out while the hanging tool runs, or (on a loaded machine) before it starts.
    assert (
        "did not finish within agent mode's remaining time" in message
        or "agent mode's time (max_time_s) ran out before" in message
    )
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-2].code == "agent_time_limit"  # type: ignore[union-attr]
    assert [item.type for item in events[-1].response.output] == ["mcp_call"]  # type: ignore[union-attr]


# --- OpenAI legacy completions ------------------------------------------------------------------------


def test_completions_json(sdk: OpenAI) -> None:
    raw = sdk.completions.with_raw_response.create(model="echo/m", prompt=ADD)
    assert raw.parse().choices[0].text == "toy__add returned: 5"
    assert raw.headers["x-asbru-agent-steps"] == "1"


def test_completions_stream_shows_each_step_as_a_chunk_of_its_own(sdk: OpenAI) -> None:
    stream = sdk.completions.create(model="echo/m", prompt=ADD, stream=True)
    text, steps, finishes = "", [], []
    for chunk in stream:
        assert chunk.object == "text_completion"
        if (chunk.model_extra or {}).get("mcp_call"):
            assert chunk.choices == []
            steps.append(chunk.model_extra["mcp_call"])  # type: ignore[index]
        for choice in chunk.choices:
            text += choice.text
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert text == "toy__add returned: 5"
    assert [(s["status"], s["name"], s["output"]) for s in steps] == [
        ("in_progress", "add", None),
        ("completed", "add", "5"),
    ]
    assert finishes == ["stop"]


def test_completions_depth_limit(sdk: OpenAI) -> None:
    raw = sdk.completions.with_raw_response.create(model="echo/m", prompt=LOOP)
    choice = raw.parse().choices[0]
    assert raw.headers["x-asbru-agent-stopped"] == "max_depth"
    assert (choice.text, choice.finish_reason) == ("", "tool_calls")
    stream = sdk.completions.create(model="echo/m", prompt=LOOP, stream=True)
    statuses = [chunk.model_extra["mcp_call"]["status"] for chunk in stream if chunk.model_extra]  # type: ignore[index]
    assert statuses == ["in_progress", "completed"] * 2 + ["incomplete"]


def _fake_openai(url: str) -> dict[str, object]:
    """The recording OpenAI upstream as a provider named ``fake``."""
    return {
        "name": "fake",
        "type": "openai",
        "base_url": url + "/v1",
        "keys": [{"name": "k", "secret": "env:ASBRU_TEST_OPENAI_KEY"}],
    }


def test_completions_an_openai_provider_takes_as_they_are_get_no_tools(
    openai_upstream: tuple[str, Recorder],
) -> None:
    """Agent mode would turn a legacy completion into a chat: a provider that takes the completion
    as it is (an OpenAI one, whose model may be a completions-only one) gets it unchanged, no tools."""
    url, recorder = openai_upstream
    provider = _fake_openai(url)
    with run_gateway({**config(toy()), "providers": [provider]}) as gateway, _openai(gateway) as client:
        answer = client.completions.create(model="fake/instruct", prompt=ADD, logprobs=2)
    assert answer.object == "text_completion"
    sent = recorder.requests[-1]
    assert sent.path == "/v1/completions" and "tools" not in sent.json and sent.json["logprobs"] == 2


# --- limits, and calls the gateway does not run -------------------------------------------------------


def test_depth_limit_returns_the_pending_calls(sdk: OpenAI) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="echo/m", messages=user(LOOP))  # type: ignore[arg-type]
    answer = raw.parse()
    assert raw.headers["x-asbru-agent-steps"] == "2" and raw.headers["x-asbru-agent-stopped"] == "max_depth"
    assert answer.choices[0].finish_reason == "tool_calls"
    assert answer.choices[0].message.tool_calls[0].function.name == "toy__add"  # type: ignore[index]
    assert answer.usage is not None and answer.usage.prompt_tokens == 3  # three model calls, 1 token each


def test_depth_limit_in_a_stream(sdk: OpenAI) -> None:
    stream = sdk.chat.completions.create(model="echo/m", messages=user(LOOP), stream=True)  # type: ignore[arg-type]
    statuses, calls, finish = [], [], None
    for chunk in stream:
        if (chunk.model_extra or {}).get("mcp_call"):
            statuses.append(chunk.model_extra["mcp_call"]["status"])  # type: ignore[index]
        for choice in chunk.choices:
            calls += choice.delta.tool_calls or []
            finish = choice.finish_reason or finish
    assert statuses == ["in_progress", "completed"] * 2 + ["incomplete"]
    assert finish == "tool_calls" and calls[0].function.name == "toy__add"  # type: ignore[union-attr]


def test_time_limit_ends_a_hanging_loop_with_a_clear_error(sdk: OpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model="echo/m", messages=user("/tool slow__hang {}"))  # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    assert raised.value.status_code == 504
    assert "agent mode ran out of time" in raised.value.message


def test_time_limit_in_a_stream(gateway: RunningGateway) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "echo/m", "stream": True, "messages": user("/tool slow__hang {}")},
        timeout=10,
    ) as response:
        body = response.read().decode()
    assert '"status":"in_progress"' in body and '"status":"failed"' in body
    assert "did not finish within agent mode's remaining time" in body
    assert "agent_time_limit" in body and "[DONE]" not in body


def test_a_call_the_gateway_does_not_run_goes_to_the_client(gateway: RunningGateway, sdk: OpenAI) -> None:
    answer = sdk.chat.completions.create(model="echo/m", messages=user('/tool manual__add {"a": 1, "b": 2}'))  # type: ignore[arg-type]
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert answer.choices[0].finish_reason == "tool_calls" and call.function.name == "manual__add"
    executed = httpx.post(gateway.url + "/v1/mcp/tool/execute", json=call.model_dump(), timeout=10)
    assert executed.status_code == 200
    assert executed.json() == {"role": "tool", "tool_call_id": call.id, "content": "3"}
    messages: list[Any] = [
        *user("x"),
        answer.choices[0].message.model_dump(exclude_none=True),
        executed.json(),
    ]
    final = sdk.chat.completions.create(model="echo/m", messages=messages)
    assert final.choices[0].message.content == "manual__add returned: 3"


class _Attempts(PluginBase):
    """Records what the attempt and completion hooks see of an agent-mode request."""

    seen: ClassVar[list[tuple[str, Any]]] = []

    async def before_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        return None

    async def after_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        self.seen.append(("attempt", attempt.number))

    async def on_complete(self, request: LLMRequest, outcome: Outcome) -> None:
        self.seen.append(("usage", request.usage))


def test_every_model_call_goes_through_the_attempt_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.PLUGIN_TYPES, "attempts", _Attempts)
    _Attempts.seen.clear()
    plugins = [{"name": "attempts", "type": "attempts"}]
    with run_gateway(config(toy(), plugins=plugins)) as gateway, _openai(gateway) as client:
        answer = client.chat.completions.create(model="echo/m", messages=user(ADD))  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "toy__add returned: 5"
    assert _Attempts.seen[:2] == [("attempt", 1), ("attempt", 2)]
    kind, usage = _Attempts.seen[2]
    # echo counts words: 1 for the call, 3 for "toy__add returned: 5"; both calls add up
    assert kind == "usage" and usage.prompt_tokens == answer.usage.prompt_tokens == 1 + 3  # type: ignore[union-attr]


def test_injected_tools_reach_a_real_provider_and_its_own_calls_go_back(
    openai_upstream: tuple[str, Recorder],
) -> None:
    """An OpenAI-family upstream (its stream passed through as bytes) that calls the client's own
    tool: the MCP tools were offered to it, and the call goes back to the client, JSON and stream."""
    url, recorder = openai_upstream
    provider = _fake_openai(url)
    with run_gateway({**config(toy()), "providers": [provider]}) as gateway, _openai(gateway) as client:
        answer = client.chat.completions.create(model="fake/tool", messages=user("weather?"))  # type: ignore[arg-type]
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert (call.function.name, call.function.arguments) == (sc.TOOL_NAME, sc.TOOL_ARGS)
        sent = recorder.requests[-1].json
        assert {tool["function"]["name"] for tool in sent["tools"]} >= {"toy__add", "toy__shout"}
        stream = client.chat.completions.create(model="fake/tool", messages=user("weather?"), stream=True)  # type: ignore[arg-type]
        arguments, finish = "", None
        for chunk in stream:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or ():
                    arguments += delta.function.arguments or ""  # type: ignore[union-attr]
                finish = choice.finish_reason or finish
        assert arguments == sc.TOOL_ARGS and finish == "tool_calls"
