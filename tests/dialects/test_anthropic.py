"""The Anthropic Messages dialect, bytes in / bytes out: parse, to_core, render, stream, errors, models."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from asbru_gateway.core.formats import ANTHROPIC_COUNT_TOKENS, ANTHROPIC_MESSAGES, CORE
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import CHAT, COUNT_TOKENS, LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.anthropic import AnthropicMessagesDialect
from asbru_gateway.dialects.base import Endpoint, Incoming
from asbru_gateway.errors import (
    BodyTooLargeError,
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PoolFullError,
    UnsupportedError,
    UpstreamError,
    UpstreamTimeoutError,
)

DIALECT = AnthropicMessagesDialect()
MESSAGES = Endpoint("POST", "/messages", CHAT)
COUNT = Endpoint("POST", "/messages/count_tokens", COUNT_TOKENS)
HEADERS = [(b"x-api-key", b"sk-client"), (b"anthropic-version", b"2023-06-01")]
USER = [{"role": "user", "content": "hi"}]


def parse(
    body: dict[str, Any] | bytes, endpoint: Endpoint = MESSAGES, family: str | None = None
) -> LLMRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return DIALECT.parse(
        Incoming(
            request_id="req1",
            endpoint=endpoint,
            body=raw,
            headers=HEADERS,
            query=b"",
            path_model=None,
            family=family,
        )
    )


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 64, "messages": USER, **fields}


def to_core(**fields: Any) -> dict[str, Any]:
    return parse(request(**fields)).core


def refused(**fields: Any) -> GatewayError:
    with pytest.raises(InvalidRequestError) as raised:
        to_core(**fields)
    return raised.value


# --- parse ----------------------------------------------------------------------------------------


def test_parse_keeps_the_body_native_and_pops_fallbacks() -> None:
    parsed = parse(request(fallbacks=["openai/gpt-4o"], cache_me={"x": 1}, stream=True), family="anthropic")
    assert parsed.native_format == ANTHROPIC_MESSAGES
    assert parsed.native is not None and "fallbacks" not in parsed.native
    assert parsed.native["cache_me"] == {"x": 1}
    assert parsed.fallbacks == ["openai/gpt-4o"]
    assert (parsed.model, parsed.stream, parsed.family, parsed.dialect) == (
        "claude-x",
        True,
        "anthropic",
        "anthropic.messages",
    )
    assert parsed.credential is not None and parsed.credential.reveal() == "sk-client"


def test_parse_count_tokens_needs_no_max_tokens() -> None:
    parsed = parse({"model": "claude-x", "messages": USER}, COUNT)
    assert parsed.operation == COUNT_TOKENS
    assert parsed.native_format == ANTHROPIC_COUNT_TOKENS
    assert parsed.stream is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 5, "messages": USER}, "model"),
        ({"model": "m", "messages": USER}, "max_tokens"),
        ({"model": "m", "max_tokens": 0, "messages": USER}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": USER}, "max_tokens"),
        ({"model": "m", "max_tokens": 5}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": ["hi"]}, "messages[0]"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages[0].role",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]},
            "messages[0].content",
        ),
        ({"model": "m", "max_tokens": 5, "messages": USER, "stream": "yes"}, "stream"),
        ({"model": "m", "max_tokens": 5, "messages": USER, "fallbacks": "x"}, "fallbacks"),
    ],
)
def test_parse_rejects_malformed_requests_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse(body)
    assert raised.value.status == 400
    assert raised.value.param == param


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]"])
def test_parse_rejects_bodies_that_are_not_objects(body: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        parse(body)


# --- to_core --------------------------------------------------------------------------------------


def test_simple_request_and_options() -> None:
    core = to_core(
        system="Be brief.",
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        stream=True,
    )
    assert core == {
        "model": "claude-x",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END"],
        "user": "u-1",
        "thinking": {"budget_tokens": 1024},
        "stream": True,
    }


def test_structured_output_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    core = to_core(output_config={"format": {"type": "json_schema", "schema": schema}})
    assert core["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


def test_defaults_that_change_nothing_are_accepted() -> None:
    core = to_core(
        thinking={"type": "disabled"}, service_tier="auto", stream=False, metadata={"user_id": None}
    )
    assert set(core) == {"model", "messages", "max_tokens"}


def test_system_blocks() -> None:
    one = to_core(system=[{"type": "text", "text": "A"}])
    assert one["messages"][0] == {"role": "system", "content": "A"}
    two = to_core(system=[{"type": "text", "text": "A"}, {"type": "text", "text": "B"}])
    assert two["messages"][0]["content"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]


def test_images_become_image_url_parts() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    core = to_core(messages=[{"role": "user", "content": content}])
    assert core["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def test_tool_round_trip_keeps_order() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "tu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "tu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "tu_2",
                    "content": [{"type": "text", "text": "no data"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    core = to_core(messages=messages, tools=TOOLS, tool_choice={"type": "auto"})
    assert core["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "tu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "tu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "tu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "tu_2", "content": "Error: no data"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert core["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": TOOLS[0]["input_schema"],
                "description": "Weather in a city",
            },
        }
    ]
    assert core["tool_choice"] == "auto"


def test_text_before_a_tool_result_stays_before_it() -> None:
    content = [
        {"type": "text", "text": "first"},
        {"type": "tool_result", "tool_use_id": "tu_1"},
    ]
    core = to_core(messages=[{"role": "user", "content": content}])
    assert core["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "tool", "tool_call_id": "tu_1", "content": ""},
    ]


def test_tool_result_with_an_image() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    result = {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "see"}, image]}
    core = to_core(messages=[{"role": "user", "content": [result]}])
    assert core["messages"][0]["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    core = to_core(tools=TOOLS, tool_choice=choice)
    assert {key: core[key] for key in ("tool_choice", "parallel_tool_calls") if key in core} == expected


def test_an_assistant_turn_of_only_thinking_is_left_out() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "xyz"}]},
        {"role": "user", "content": "b"},
    ]
    assert [m["role"] for m in to_core(messages=messages)["messages"]] == ["user", "user"]


def test_to_core_never_mutates_the_native_body() -> None:
    body = request(
        system=[{"type": "text", "text": "S"}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
        ],
        tools=TOOLS,
    )
    parsed = parse(copy.deepcopy(body))
    _ = parsed.core
    assert parsed.native == body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]},
            "system[0].cache_control",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
                    }
                ]
            },
            "messages[0].content[0].cache_control",
        ),
        ({"tools": [{**TOOLS[0], "cache_control": {"type": "ephemeral"}}]}, "tools[0].cache_control"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "base64", "media_type": "application/pdf", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "w"}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        ({"metadata": {"user_id": "u", "tenant": "t"}}, "metadata.tenant"),
        ({"thinking": {"type": "adaptive"}}, "thinking.type"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000, "display": "omitted"}}, "thinking.display"),
        ({"output_config": {"effort": "high"}}, "output_config.effort"),
        ({"cache_control": {"type": "ephemeral"}}, "cache_control"),
        ({"service_tier": "standard_only"}, "service_tier"),
        ({"container": "c-1"}, "container"),
        ({"mcp_servers": [{"type": "url", "url": "https://mcp"}]}, "mcp_servers"),
    ],
)
def test_fields_the_core_cannot_carry_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    error = refused(**fields)
    assert isinstance(error, UnsupportedError)
    assert error.param == param
    assert "only an Anthropic model takes it" in error.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"metadata": "u"}, "metadata"),
        ({"metadata": {"user_id": 3}}, "metadata.user_id"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"tools": {"name": "x"}}, "tools"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"output_config": "json"}, "output_config"),
        ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format"),
        ({"system": 5}, "system"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}],
                    }
                ]
            },
            "messages[0].content[0].input",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
            "messages[0].content[0].source",
        ),
    ],
)
def test_malformed_fields_are_a_400_naming_them(fields: dict[str, Any], param: str) -> None:
    error = refused(**fields)
    assert not isinstance(error, UnsupportedError)
    assert error.status == 400
    assert error.param == param


def test_count_tokens_translates_like_messages() -> None:
    parsed = parse({"model": "claude-x", "system": "S", "messages": USER, "tools": TOOLS}, COUNT)
    assert [m["role"] for m in parsed.core["messages"]] == ["system", "user"]
    assert parsed.core["tools"][0]["function"]["name"] == "get_weather"


# --- render ---------------------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **extra}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def render(data: dict[str, Any], fields: dict[str, Any] | None = None) -> dict[str, Any]:
    rendered: dict[str, Any] = orjson.loads(
        DIALECT.render(parse(request(**(fields or {}))), Reply(data=data))
    )
    return rendered


def test_native_replies_pass_through_byte_for_byte() -> None:
    body = b'{"type":"message","id":"msg_1","content":[] ,"unknown":true}'
    assert DIALECT.render(parse(request()), Reply(body, format=ANTHROPIC_MESSAGES)) == body
    count = b'{"input_tokens": 42}'
    assert DIALECT.render(parse(request()), Reply(count, format=ANTHROPIC_COUNT_TOKENS)) == count


def test_core_text_reply_renders_as_a_message() -> None:
    assert render(completion({"role": "assistant", "content": "Hello"})) == {
        "id": "chatcmpl-1",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }


def test_core_tool_calls_render_as_tool_use_with_parsed_input() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "thinking...",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": [1, 2]}'}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": ""}},
        ],
    }
    rendered = render(completion(message, "tool_calls"))
    assert rendered["content"] == [
        {"type": "thinking", "thinking": "thinking...", "signature": ""},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": [1, 2]}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
    ]
    assert rendered["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("something_new", "end_turn"),
    ],
)
def test_stop_reasons(finish: str | None, stop_reason: str) -> None:
    rendered = render(completion({"role": "assistant", "content": "x"}, finish))
    assert rendered["stop_reason"] == stop_reason


def test_stop_sequence_when_the_upstream_names_one_of_the_clients() -> None:
    data = completion({"role": "assistant", "content": "x"}, "stop", stop_reason="END")
    assert render(data, {"stop_sequences": ["END"]})[("stop_sequence")] == "END"
    assert render(data, {"stop_sequences": ["END"]})["stop_reason"] == "stop_sequence"
    assert render(data, {"stop_sequences": ["OTHER"]})["stop_reason"] == "end_turn"


def test_cached_prompt_tokens_are_split_out() -> None:
    data = completion({"role": "assistant", "content": "x"})
    data["usage"]["prompt_tokens_details"] = {"cached_tokens": 10}
    assert render(data)["usage"] == {"input_tokens": 2, "output_tokens": 5, "cache_read_input_tokens": 10}


def test_a_malformed_core_reply_still_renders() -> None:
    rendered = render({"choices": []})
    assert rendered["content"] == [] and rendered["model"] == "claude-x" and rendered["id"] == "msg_req1"


def test_count_tokens_estimate_renders_as_anthropic() -> None:
    parsed = parse({"model": "claude-x", "messages": USER}, COUNT)
    assert DIALECT.render(parsed, Reply(data={"input_tokens": 7}, format=CORE)) == b'{"input_tokens":7}'


# --- stream ---------------------------------------------------------------------------------------


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for raw in data.split(b"\n\n"):
        if not raw:
            continue
        name, payload = raw.split(b"\n")
        assert name.startswith(b"event: ") and payload.startswith(b"data: ")
        body = orjson.loads(payload[6:])
        assert body["type"] == name[7:].decode()
        out.append((name[7:].decode(), body))
    return out


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_native_events_are_forwarded_unchanged_and_end_adds_nothing() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    native = b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
    assert renderer.items([native]) is native
    rest = [b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    assert renderer.items(rest) == rest[0]
    assert renderer.end(Usage(1, 2)) == b""


def test_core_text_stream() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    first = renderer.items([chunk({"role": "assistant", "content": ""})])
    middle = renderer.items([chunk({"content": "Hel"}), chunk({"content": "lo"})])
    last = renderer.items([chunk({}, "stop")])
    tail = renderer.end(Usage(prompt_tokens=3, completion_tokens=2))
    names = [name for name, _ in events(first + middle + last + tail)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events(first)[0][1]["message"]
    assert (start["id"], start["model"], start["content"], start["role"]) == (
        "chatcmpl-9",
        "gpt-4o",
        [],
        "assistant",
    )
    deltas = [body["delta"]["text"] for name, body in events(middle) if name == "content_block_delta"]
    assert deltas == ["Hel", "lo"]
    message_delta = events(tail)[0][1]
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert message_delta["usage"] == {"input_tokens": 3, "output_tokens": 2}


def test_core_tool_call_stream_with_pieces_and_text_first() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    out = renderer.items(
        [
            chunk({"role": "assistant", "content": "Let me check."}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        }
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        ]
    )
    out += renderer.end(None)
    parsed = events(out)
    starts = [
        (body["index"], body["content_block"]) for name, body in parsed if name == "content_block_start"
    ]
    assert starts == [
        (0, {"type": "text", "text": ""}),
        (1, {"type": "tool_use", "id": "c1", "name": "f", "input": {}}),
        (2, {"type": "tool_use", "id": "c2", "name": "g", "input": {}}),
    ]
    pieces = [
        (body["index"], body["delta"]["partial_json"])
        for name, body in parsed
        if name == "content_block_delta" and body["delta"]["type"] == "input_json_delta"
    ]
    assert pieces == [(1, '{"city": '), (1, '"Paris"}'), (2, "{}")]
    stops = [body["index"] for name, body in parsed if name == "content_block_stop"]
    assert stops == [0, 1, 2]
    assert parsed[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert parsed[-2][1]["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_core_sse_bytes_are_translated_too() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    raw = b"".join(
        b"data: " + orjson.dumps(c) + b"\n\n" for c in [chunk({"content": "Hi"}), chunk({}, "length")]
    )
    out = renderer.items([raw]) + renderer.items([b"data: [DONE]\n\n"]) + renderer.end(None)
    parsed = events(out)
    assert [body["delta"]["text"] for name, body in parsed if name == "content_block_delta"] == ["Hi"]
    assert parsed[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_usage_in_a_core_chunk_wins_over_the_decoders() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    usage_chunk = {"id": "x", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}
    out = renderer.items([chunk({"content": "a"}, "stop"), usage_chunk]) + renderer.end(Usage(1, 1))
    assert events(out)[-2][1]["usage"] == {"input_tokens": 9, "output_tokens": 4}


def test_a_stream_without_any_item_still_ends_as_a_message() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    names = [name for name, _ in events(renderer.end(None))]
    assert names == ["message_start", "ping", "message_delta", "message_stop"]


def test_stream_error_event() -> None:
    renderer = DIALECT.stream(parse(request(stream=True)))
    error = UpstreamError("Overloaded", status=502, code="overloaded_error")
    assert events(renderer.error(error)) == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
                "request_id": "req1",
            },
        )
    ]


# --- errors and models ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequestError("bad"), 400, "invalid_request_error"),
        (GatewayError("no", status=401, type="authentication_error"), 401, "authentication_error"),
        (GatewayError("no", status=403), 403, "permission_error"),
        (ModelNotFoundError("no model"), 404, "not_found_error"),
        (BodyTooLargeError("big"), 413, "request_too_large"),
        (UpstreamError("slow down", status=429), 429, "rate_limit_error"),
        (GatewayError("boom"), 500, "api_error"),
        (UpstreamError("bad gateway", status=502), 502, "api_error"),
        (PoolFullError("full"), 503, "overloaded_error"),
        (UpstreamTimeoutError("slow"), 504, "timeout_error"),
        (UpstreamError("Overloaded", status=529, code="overloaded_error"), 529, "overloaded_error"),
        (UpstreamError("teapot", status=418), 418, "invalid_request_error"),
    ],
)
def test_error_shape(error: GatewayError, status: int, kind: str) -> None:
    got_status, body = DIALECT.error(error, "req-7")
    assert got_status == status
    assert orjson.loads(body) == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": "req-7",
    }


def test_models_list_shape() -> None:
    body = orjson.loads(DIALECT.models([("chat", "asbru-route"), ("anthropic/claude-x", "anthropic")]))
    assert body == {
        "data": [
            {"type": "model", "id": "chat", "display_name": "chat", "created_at": "1970-01-01T00:00:00Z"},
            {
                "type": "model",
                "id": "anthropic/claude-x",
                "display_name": "anthropic/claude-x",
                "created_at": "1970-01-01T00:00:00Z",
            },
        ],
        "has_more": False,
        "first_id": "chat",
        "last_id": "anthropic/claude-x",
    }
    assert orjson.loads(DIALECT.models([])) == {
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }
