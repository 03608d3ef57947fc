"""The Responses dialect as pure translation: request -> core, core answer -> Response, core chunks ->
Responses streaming events. No sockets here; the SDK end-to-end tests are in ``tests/api``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asbru_gateway.core.formats import CORE, OPENAI_RESPONSES
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.openai_responses import OpenAIResponsesDialect
from asbru_gateway.dialects.openai_responses.request import to_core
from asbru_gateway.dialects.openai_responses.stream import ResponsesStreamRenderer
from asbru_gateway.errors import InvalidRequestError, UpstreamError
from tests.dialects.incoming import incoming

DIALECT = OpenAIResponsesDialect()
TOOL = {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}


def parse(body: dict[str, Any], *, path_model: str | None = None) -> LLMRequest:
    return DIALECT.parse(incoming("/responses", body, path_model=path_model))


def core(**body: Any) -> dict[str, Any]:
    return to_core({"model": "m", **body})


# --- parse ----------------------------------------------------------------------------------------


def test_parse_keeps_the_body_for_pass_through_and_translates_lazily() -> None:
    request = parse({"model": "openai/gpt-4o", "input": "hi", "stream": True, "fallbacks": ["echo/x"]})
    assert (request.model, request.stream, request.fallbacks) == ("openai/gpt-4o", True, ["echo/x"])
    assert request.native == {"model": "openai/gpt-4o", "input": "hi", "stream": True}
    assert request.native_format == OPENAI_RESPONSES
    assert request.core["messages"] == [{"role": "user", "content": "hi"}]
    assert request.core["stream"] is True


def test_parse_takes_the_model_from_an_azure_style_path() -> None:
    assert parse({"input": "hi"}, path_model="my-deployment").model == "my-deployment"


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": "x"}, "model"), ({"model": "m", "input": "x", "stream": "yes"}, "stream")],
)
def test_parse_rejects_what_routing_needs_and_is_wrong(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse(body)
    assert raised.value.param == param


def test_a_stateful_request_passes_the_parse_and_fails_only_when_translated() -> None:
    request = parse({"model": "m", "input": "hi", "previous_response_id": "resp_1"})
    with pytest.raises(InvalidRequestError) as raised:
        _ = request.core
    assert raised.value.status == 400
    assert raised.value.param == "previous_response_id"
    assert "OpenAI" in raised.value.message


# --- request -> core ------------------------------------------------------------------------------


def test_instructions_and_string_input() -> None:
    assert core(instructions="Be brief.", input="hi")["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_message_items_with_text_image_and_file_parts() -> None:
    messages = core(
        input=[
            {"role": "developer", "content": "rules"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,AAAA",
                        "filename": "a.pdf",
                    },
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "a cat", "annotations": []}]},
        ]
    )["messages"]
    assert messages == [
        {"role": "developer", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"},
                },
            ],
        },
        {"role": "assistant", "content": "a cat"},
    ]


def test_function_call_items_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    messages = core(
        input=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": "Let me check."},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "21C"}],
            },
        ]
    )["messages"]
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    assert messages[1] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"id": "c1", **call},
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
            },
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "18C"}
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "21C"}]}


def test_a_function_call_without_text_is_an_assistant_message_of_its_own() -> None:
    messages = core(
        input=[
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        ]
    )["messages"]
    assert messages[1]["content"] is None and messages[1]["tool_calls"][0]["id"] == "c1"


def test_options_map_onto_the_core() -> None:
    body = core(
        input="hi",
        tools=[{**TOOL, "strict": True}],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=50,
        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
        safety_identifier="user-1",
        metadata={"ticket": "42"},
        store=False,
        background=False,
        prompt_cache_key="k",
        service_tier="auto",
        truncation="disabled",
        stream=False,
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object"},
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert (body["parallel_tool_calls"], body["temperature"], body["top_p"]) == (False, 0.2, 0.9)
    assert (body["max_tokens"], body["user"]) == (50, "user-1")
    assert "metadata" not in body and "stream" not in body


def test_json_object_format_and_user_over_safety_identifier() -> None:
    body = core(input="x", text={"format": {"type": "json_object"}}, user="a", safety_identifier="b")
    assert body["response_format"] == {"type": "json_object"}
    assert body["user"] == "a"
    assert "response_format" not in core(input="x", text={"format": {"type": "text"}})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("previous_response_id", "resp_123"),
        ("conversation", "conv_1"),
        ("prompt", {"id": "pmpt_1"}),
        ("background", True),
        ("store", True),
        ("reasoning", {"effort": "high"}),
        ("include", ["reasoning.encrypted_content"]),
        ("max_tool_calls", 3),
        ("top_logprobs", 2),
        ("truncation", "auto"),
        ("service_tier", "flex"),
        ("some_new_field", 1),
    ],
)
def test_what_the_core_cannot_express_is_a_400_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        core(input="hi", **{field: value})
    assert raised.value.status == 400
    assert raised.value.param == field


def test_nulls_count_as_absent() -> None:
    assert core(input="hi", previous_response_id=None, reasoning={"effort": None}, include=[])["messages"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "x", "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"input": "x", "text": {"verbosity": "low"}}, "text.verbosity"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format"),
        ({"input": "x", "temperature": "hot"}, "temperature"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call"}]}, "input[0].type"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, None),
        ({"input": [{"role": "user", "content": [{"type": "input_video"}]}]}, "input[0].content[0].type"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"input": "x", "instructions": ["x"]}, "instructions"),
    ],
)
def test_invalid_or_untranslatable_input_is_a_400(body: dict[str, Any], param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        core(**body)
    assert raised.value.status == 400
    if param is not None:
        assert raised.value.param == param
    else:
        assert raised.value.param and raised.value.param.startswith("input[0].content[0]")


# --- core answer -> Response ----------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-upstream",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "total_tokens": 8,
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    }


def render(reply: Reply, body: dict[str, Any] | None = None, provider: str | None = None) -> dict[str, Any]:
    request = parse(body or {"model": "m", "input": "hi", "metadata": {"ticket": "42"}})
    request.provider = provider
    return orjson.loads(DIALECT.render(request, reply))  # type: ignore[no-any-return]


def test_a_core_answer_renders_as_a_response_with_the_request_echoed() -> None:
    response = render(Reply(data=completion({"content": "Hello"})))
    assert response["object"] == "response" and response["id"].startswith("resp_")
    assert (response["status"], response["model"], response["metadata"]) == (
        "completed",
        "gpt-upstream",
        {"ticket": "42"},
    )
    [item] = response["output"]
    assert item["type"] == "message" and item["id"].startswith("msg_")
    assert item["content"] == [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]
    assert response["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 8,
    }


def test_tool_calls_render_as_function_call_items() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    response = render(Reply(data=completion({"content": None, "tool_calls": [call]}, "tool_calls")))
    [item] = response["output"]
    assert {key: item[key] for key in ("type", "call_id", "name", "arguments", "status")} == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a":1}',
        "status": "completed",
    }


STEP = {
    "type": "mcp_call",
    "id": "call_1",
    "server_label": "toy",
    "name": "add",
    "arguments": '{"a":1}',
    "status": "completed",
    "output": "2",
    "error": None,
}


def test_agent_steps_render_as_mcp_call_items_before_the_answer() -> None:
    request = parse({"model": "m", "input": "hi", "instructions": "Be brief."})
    request.edit()  # agent mode translates: the answer still echoes the client's settings
    reply = Reply(data=completion({"content": "Done"}))
    reply.steps = [STEP, {**STEP, "status": "failed", "output": None, "error": "boom"}]
    response = orjson.loads(DIALECT.render(request, reply))
    assert response["instructions"] == "Be brief."
    ran, failed, message = response["output"]
    assert ran["id"].startswith("mcp_") and ran["id"] != failed["id"]
    assert {key: ran[key] for key in ("type", "server_label", "name", "arguments", "status", "output")} == {
        "type": "mcp_call",
        "server_label": "toy",
        "name": "add",
        "arguments": '{"a":1}',
        "status": "completed",
        "output": "2",
    }
    assert ran["error"] is None
    assert failed["status"] == "failed" and failed["output"] is None
    assert failed["error"] == {
        "type": "mcp_tool_execution_error",
        "content": [{"type": "text", "text": "boom"}],
    }
    assert message["type"] == "message"


def test_calls_a_limit_left_follow_the_answer_as_function_calls_and_incomplete_steps() -> None:
    call = {"id": "call_2", "type": "function", "function": {"name": "toy__add", "arguments": "{}"}}
    reply = Reply(data=completion({"content": None, "tool_calls": [call]}, "tool_calls"))
    left = {**STEP, "id": "call_2", "status": "incomplete", "output": None, "error": "agent mode stopped"}
    reply.steps = [STEP, left]
    response = render(reply)
    assert [(item["type"], item["status"]) for item in response["output"]] == [
        ("mcp_call", "completed"),
        ("function_call", "completed"),
        ("mcp_call", "incomplete"),
    ]
    assert response["output"][1]["call_id"] == "call_2"


def test_a_length_stop_is_an_incomplete_response() -> None:
    response = render(Reply(data=completion({"content": "Hel"}, "length")))
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_native_answer_passes_through_with_the_serving_provider_added() -> None:
    body = b'{"id":"resp_up","object":"response","unknown_field":1}'
    response = render(Reply(body, format=OPENAI_RESPONSES), provider="openai")
    assert response["id"] == "resp_up" and response["unknown_field"] == 1
    assert response["extra_fields"] == {"provider": "openai", "model_requested": "m"}


def test_an_answer_without_a_message_is_an_upstream_protocol_error() -> None:
    with pytest.raises(UpstreamError):
        render(Reply(data={"choices": []}, format=CORE))


# --- core chunks -> streaming events --------------------------------------------------------------


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        name, data = block.split(b"\n")
        payload = orjson.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + payload["type"].encode()
        out.append(payload)
    return out


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "model": "up", "choices": choices, **extra}


def renderer(**request: Any) -> ResponsesStreamRenderer:
    return ResponsesStreamRenderer({"model": "m", **request}, passthrough=False)


def test_text_stream_events_in_order_and_numbered() -> None:
    stream = renderer(metadata={"a": "b"})
    raw = stream.items([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"})])
    raw += stream.items([b'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'])  # core SSE bytes
    raw += stream.items([chunk({}, "stop")])
    raw += stream.end(Usage(4, 2))
    out = events(raw)
    assert [event["type"] for event in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["sequence_number"] for event in out] == list(range(len(out)))
    assert out[6]["text"] == "Hello"
    final = out[-1]["response"]
    assert final["id"] == out[0]["response"]["id"]
    assert final["status"] == "completed" and final["metadata"] == {"a": "b"}
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"]["input_tokens"] == 4 and final["usage"]["total_tokens"] == 6


def test_streamed_tool_call_closes_the_text_before_it_and_keeps_its_ids() -> None:
    stream = renderer()
    raw = stream.items([chunk({"content": "Checking."})])
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    raw += stream.items([chunk({"tool_calls": [call]})])
    raw += stream.items([chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})])
    raw += stream.items([chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})])
    raw += stream.items([chunk({}, "tool_calls", usage={"prompt_tokens": 9, "completion_tokens": 1})])
    raw += stream.end(None)
    out = events(raw)
    kinds = [event["type"] for event in out]
    assert kinds.index("response.output_item.done") < kinds.index("response.function_call_arguments.delta")
    added = [event for event in out if event["type"] == "response.output_item.added"]
    assert [event["output_index"] for event in added] == [0, 1]
    assert added[1]["item"]["call_id"] == "call_1" and added[1]["item"]["name"] == "f"
    done = next(event for event in out if event["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == '{"a":1}' and done["item_id"] == added[1]["item"]["id"]
    final = out[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    assert final["usage"]["input_tokens"] == 9


def test_an_agent_step_is_an_mcp_call_item_between_the_text_around_it() -> None:
    stream = renderer()
    raw = stream.items([chunk({"content": "Let me add."})])
    raw += stream.items([chunk(mcp_call={**STEP, "status": "in_progress", "output": None})])
    raw += stream.items([chunk(mcp_call=STEP)])
    raw += stream.items([chunk({"content": "It is 2."}), chunk({}, "stop")])
    raw += stream.end(None)
    out = events(raw)
    kinds = [event["type"] for event in out]
    step_events = [kind for kind in kinds if "mcp_call" in kind]
    assert step_events == [
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ]
    added = [event for event in out if event["type"] == "response.output_item.added"]
    assert [(event["output_index"], event["item"]["type"]) for event in added] == [
        (0, "message"),
        (1, "mcp_call"),
        (2, "message"),
    ]
    assert added[1]["item"]["status"] == "in_progress" and added[1]["item"]["arguments"] == ""
    # the text before the step is done before the step starts
    assert kinds.index("response.output_item.done") < kinds.index("response.mcp_call_arguments.delta")
    final = out[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "mcp_call", "message"]
    assert final["output"][1]["id"] == added[1]["item"]["id"] and final["output"][1]["output"] == "2"


def test_a_step_that_never_ended_is_closed_incomplete() -> None:
    stream = renderer()
    raw = stream.items([chunk(mcp_call={**STEP, "status": "in_progress", "output": None})])
    raw += stream.end(None)
    final = events(raw)[-1]["response"]
    [item] = final["output"]
    assert item["type"] == "mcp_call" and item["status"] == "incomplete"
    assert item["error"]["content"][0]["text"] == "the call did not end"


def test_length_stop_ends_with_response_incomplete() -> None:
    stream = renderer()
    raw = stream.items([chunk({"content": "x"}, "length")]) + stream.end(None)
    final = events(raw)[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_an_error_mid_stream_is_an_error_event_then_response_failed() -> None:
    stream = renderer()
    raw = stream.items([chunk({"content": "x"})])
    raw += stream.error(UpstreamError("overloaded", status=429, type="rate_limit_error", code="rate_limited"))
    out = events(raw)
    assert [event["type"] for event in out[-2:]] == ["error", "response.failed"]
    assert out[-2]["message"] == "overloaded" and out[-2]["code"] == "rate_limited"
    failed = out[-1]["response"]
    assert failed["status"] == "failed" and failed["id"] == out[0]["response"]["id"]
    assert failed["error"]["code"] == "rate_limit_exceeded"


def test_an_error_before_anything_still_opens_the_response_first() -> None:
    out = events(renderer().error(UpstreamError("boom", status=502)))
    assert [event["type"] for event in out] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]


def test_passed_through_events_are_forwarded_unchanged() -> None:
    stream = ResponsesStreamRenderer({"model": "m"}, passthrough=True)
    native = b'event: response.created\ndata: {"type":"response.created","x":1}\n\n'
    assert stream.items([native, native]) == native + native
    assert stream.end(None) == b""
    out = events(stream.error(UpstreamError("boom", status=502)))
    assert [event["type"] for event in out] == ["error"]
