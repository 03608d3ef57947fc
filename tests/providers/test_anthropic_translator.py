"""The Anthropic translator, bytes in / bytes out, and the Anthropic fake checked against the real SDK."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.errors import InvalidRequestError, UnsupportedError, UpstreamProtocolError
from asbru_gateway.providers.anthropic.stream import AnthropicStreamDecoder
from asbru_gateway.providers.anthropic.translator import AnthropicTranslator
from asbru_gateway.providers.base import EmbeddingsTranslator, MappedError, Target, Usage
from asbru_gateway.providers.openai.translator import OpenAITranslator
from tests.fakes import scenarios
from tests.fakes.anthropic import MESSAGE_ID, make_app, provider_config, sse, stream_events
from tests.fakes.server import Recorder, serve_in_thread
from tests.providers.openai_sse import openai_events

CREATED = 1_700_000_000
CONFIG = ProviderConfig(name="anthropic", type="anthropic")
BASE_URL = "https://api.anthropic.com/v1"


def make_translator(config: ProviderConfig = CONFIG) -> AnthropicTranslator:
    return AnthropicTranslator(config, clock=lambda: CREATED + 0.5)


def make_target(
    model: str = "claude-test", *, base_url: str = BASE_URL, api_key: str | None = "sk-test"
) -> Target:
    return Target(base_url=base_url, model=model, api_key=api_key, config=CONFIG)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def translate(request: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    upstream = make_translator().chat_request(request, make_target(), stream=stream)
    body: dict[str, Any] = orjson.loads(upstream.body)
    return body


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


# --- shape --------------------------------------------------------------------------------------


def test_is_a_translator_of_its_own_without_embeddings() -> None:
    translator = make_translator()
    assert not isinstance(translator, OpenAITranslator)
    assert not isinstance(translator, EmbeddingsTranslator)


# --- request: URL and headers -------------------------------------------------------------------


def test_url_and_headers() -> None:
    upstream = make_translator().chat_request({"messages": [user("hi")]}, make_target(), stream=False)
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.method == "POST"
    assert upstream.headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-test",
    }


def test_headers_take_api_version_and_extra_headers_and_omit_a_missing_key() -> None:
    config = ProviderConfig(
        name="anthropic",
        type="anthropic",
        api_version="2099-01-01",
        network={"headers": {"Anthropic-Beta": "prompt-caching-2024-07-31"}},
    )
    upstream = make_translator(config).chat_request(
        {"messages": [user("hi")]}, make_target(api_key=None), stream=True
    )
    assert upstream.headers == {
        "content-type": "application/json",
        "anthropic-version": "2099-01-01",
        "anthropic-beta": "prompt-caching-2024-07-31",
    }


# --- request: body ------------------------------------------------------------------------------


def test_minimal_request_gets_target_model_and_default_max_tokens() -> None:
    body = translate({"model": "client-name", "messages": [user("hi")]})
    assert body == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [text("hi")]}],
    }


def test_stream_flag_comes_from_the_call_not_the_body() -> None:
    assert "stream" not in translate({"messages": [user("hi")], "stream": True})
    assert translate({"messages": [user("hi")]}, stream=True)["stream"] is True


def test_system_and_developer_messages_become_the_system_field() -> None:
    body = translate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [text("Use French."), text("No emoji.")]},
                user("hi"),
                {"role": "system", "content": ""},
            ]
        }
    )
    assert body["system"] == "Be brief.\n\nUse French.\n\nNo emoji."
    assert body["messages"] == [{"role": "user", "content": [text("hi")]}]


def test_multi_turn_keeps_order_and_merges_consecutive_same_role_messages() -> None:
    body = translate(
        {
            "messages": [
                user("one"),
                user([text("two"), text("")]),
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": [text("four")]},
                {"role": "assistant", "content": ""},
                user("five"),
            ]
        }
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("three"), text("four")]},
        {"role": "user", "content": [text("five")]},
    ]


def test_images_data_url_and_http_url() -> None:
    body = translate(
        {
            "messages": [
                user(
                    [
                        text("what is this?"),
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                        },
                    ]
                )
            ]
        }
    )
    assert body["messages"][0]["content"] == [
        text("what is this?"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url",
    ["data:image/png,rawbytes", "data:text/plain;base64,aGk=", "data:image/png;base64,", "ftp://x/y.png"],
)
def test_bad_image_urls_are_invalid_requests(url: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        translate({"messages": [user([{"type": "image_url", "image_url": {"url": url}}])]})
    assert caught.value.param == "messages[0].content[0].image_url"


def test_tool_calls_and_tool_results() -> None:
    request = {
        "messages": [
            user("weather in Paris and Oslo?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [text("rain")]},
            user("thanks"),
        ]
    }
    assert translate(request)["messages"] == [
        {"role": "user", "content": [text("weather in Paris and Oslo?")]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [text("rain")]},
                text("thanks"),
            ],
        },
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    request = {"messages": [user("hi"), {"role": "assistant", "tool_calls": [call]}]}
    with pytest.raises(InvalidRequestError) as caught:
        translate(request)
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


def test_tool_message_needs_its_call_id() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        translate({"messages": [user("hi"), {"role": "tool", "content": "x"}]})
    assert caught.value.param == "messages[1].tool_call_id"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tools_and_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = translate({"messages": [user("hi")], "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    assert body["tool_choice"] == expected


def test_tool_without_parameters_gets_an_empty_object_schema_and_no_choice_by_default() -> None:
    body = translate({"messages": [user("hi")], "tools": [{"type": "function", "function": {"name": "now"}}]})
    assert body["tools"] == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert "tool_choice" not in body


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    body = translate({"messages": [user("hi")], "tools": [WEATHER_TOOL], "parallel_tool_calls": False})
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = translate(
        {
            "messages": [user("hi")],
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        }
    )
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_errors() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        translate({"messages": [user("hi")], "tool_choice": "required"})
    assert caught.value.param == "tool_choice"
    with pytest.raises(InvalidRequestError) as caught:
        translate({"messages": [user("hi")], "tools": [WEATHER_TOOL], "tool_choice": "sometimes"})
    assert caught.value.param == "tool_choice"
    assert "tool_choice" not in translate({"messages": [user("hi")], "tool_choice": "none"})


def test_non_function_tools_are_unsupported() -> None:
    with pytest.raises(UnsupportedError) as caught:
        translate({"messages": [user("hi")], "tools": [{"type": "web_search"}]})
    assert caught.value.param == "tools[0].type"


@pytest.mark.parametrize(
    ("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"]), ([], None), (None, None)]
)
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str] | None) -> None:
    assert translate({"messages": [user("hi")], "stop": stop}).get("stop_sequences") == expected


def test_max_tokens_sampling_and_user() -> None:
    body = translate(
        {
            "messages": [user("hi")],
            "max_tokens": 100,
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u-42",
            "seed": 1,
        }
    )
    assert body["max_tokens"] == 100
    assert (body["temperature"], body["top_p"]) == (0.2, 0.9)
    assert body["metadata"] == {"user_id": "u-42"}
    assert "seed" not in body
    assert (
        translate({"messages": [user("hi")], "max_tokens": 100, "max_completion_tokens": 50})["max_tokens"]
        == 50
    )


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "10"}, "max_completion_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": [1]}, "stop"),
        ({"user": 42}, "user"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
    ],
)
def test_invalid_input_names_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        translate({"messages": [user("hi")], **extra})
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": [user([{"type": "input_audio", "input_audio": {}}])]}, "messages[0].content[0].type"),
    ],
)
def test_unsupported_features_are_refused(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedError) as caught:
        translate({"messages": [user("hi")], **extra})
    assert caught.value.param == param
    assert caught.value.status == 400


def test_request_is_not_mutated() -> None:
    request = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "sys"},
            user([text("a"), {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]),
            user("b"),
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c", "content": "r"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "stop": ["x"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    before = copy.deepcopy(request)
    translate(request, stream=True)
    translate(request)
    assert request == before


# --- response -----------------------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-upstream",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 7, **usage},
        }
    )


def test_text_response() -> None:
    result = make_translator().chat_response(
        anthropic_message([text("Hello"), text(" world")]), make_target()
    )
    assert orjson.loads(result.body) == {
        "id": "msg_01",
        "object": "chat.completion",
        "created": CREATED,
        "model": "claude-upstream",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    assert result.usage == Usage(prompt_tokens=11, completion_tokens=7)


def test_tool_use_response() -> None:
    content = [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
    ]
    result = make_translator().chat_response(anthropic_message(content, "tool_use"), make_target())
    choice = orjson.loads(result.body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]


def test_text_and_tool_use_and_unknown_blocks() -> None:
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        text("Let me check."),
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
    ]
    choice = orjson.loads(
        make_translator().chat_response(anthropic_message(content, "tool_use"), make_target()).body
    )["choices"][0]
    assert choice["message"]["content"] == "Let me check."
    assert [call["id"] for call in choice["message"]["tool_calls"]] == ["toolu_1"]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    body = make_translator().chat_response(anthropic_message([text("x")], stop_reason), make_target()).body
    assert orjson.loads(body)["choices"][0]["finish_reason"] == finish_reason


def test_usage_counts_cached_prompt_tokens() -> None:
    body = anthropic_message([text("x")], cache_creation_input_tokens=100, cache_read_input_tokens=1000)
    result = make_translator().chat_response(body, make_target())
    assert result.usage == Usage(prompt_tokens=1111, completion_tokens=7)
    assert orjson.loads(result.body)["usage"] == {
        "prompt_tokens": 1111,
        "completion_tokens": 7,
        "total_tokens": 1118,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b'{"ok": true}', b"[]"])
def test_unreadable_response_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        make_translator().chat_response(body, make_target())


# --- stream -------------------------------------------------------------------------------------


def anthropic_stream(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(sse(name, data) for name, data in events)


def decode(
    data: bytes, *, byte_by_byte: bool, request: dict[str, Any] | None = None
) -> tuple[AnthropicStreamDecoder, bytes]:
    """Feed ``data`` (whole or one byte at a time), finish, and return the OpenAI SSE the client sees.

    The decoder yields core chunks and flags; ``openai_events`` renders them as the relay would, so
    ``[DONE]`` (after a normal end) and the error event (after a failure) are part of the output.
    """
    decoder = make_translator().stream_decoder(request or {"messages": [user("hi")]}, make_target())
    items: list[Any] = []
    if byte_by_byte:
        for i in range(len(data)):
            items.extend(decoder.feed(data[i : i + 1]))
    else:
        items.extend(decoder.feed(data))
    items.extend(decoder.finish())
    return decoder, b"".join(openai_events(decoder, items))


def payloads(output: bytes) -> list[Any]:
    """The JSON of every ``data:`` event; ``[DONE]`` as the string "[DONE]"."""
    events = output.split(b"\n\n")
    assert events[-1] == b""
    out: list[Any] = []
    for event in events[:-1]:
        assert event.startswith(b"data: ")
        data = event[len(b"data: ") :]
        out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


def deltas(chunks: list[Any]) -> list[dict[str, Any]]:
    return [
        chunk["choices"][0]["delta"] for chunk in chunks if isinstance(chunk, dict) and chunk.get("choices")
    ]


def test_text_stream() -> None:
    decoder, output = decode(anthropic_stream(list(stream_events("claude-x"))), byte_by_byte=False)
    chunks = payloads(output)
    assert chunks[-1] == "[DONE]"
    body = chunks[:-1]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in body)
    assert {(chunk["id"], chunk["created"], chunk["model"]) for chunk in body} == {
        (MESSAGE_ID, CREATED, "claude-x")
    }
    assert deltas(body)[0] == {"role": "assistant", "content": ""}
    assert "".join(delta.get("content") or "" for delta in deltas(body)) == scenarios.TEXT
    assert [delta["content"] for delta in deltas(body)[1:-1]] == list(scenarios.STREAM_PIECES)
    assert body[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in chunk for chunk in body)  # the client did not ask for it
    assert (decoder.done, decoder.failed) == (True, False)
    assert decoder.usage == Usage(scenarios.PROMPT_TOKENS, scenarios.COMPLETION_TOKENS)


@pytest.mark.parametrize("model", ["claude-x", "tool-model"])
@pytest.mark.parametrize("crlf", [False, True])
def test_stream_fed_byte_by_byte_equals_stream_fed_at_once(model: str, crlf: bool) -> None:
    data = anthropic_stream(list(stream_events(model)))
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    at_once = decode(data, byte_by_byte=False)[1]
    assert decode(data, byte_by_byte=True)[1] == at_once
    assert at_once.endswith(b"data: [DONE]\n\n")


def test_stream_splits_inside_multibyte_characters() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_u", "model": "m", "usage": {}}}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "héllo ✓ 🌍"},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    _, output = decode(anthropic_stream(events), byte_by_byte=True)
    assert deltas(payloads(output))[1] == {"content": "héllo ✓ 🌍"}


def test_usage_chunk_when_the_client_asks() -> None:
    request = {"messages": [user("hi")], "stream": True, "stream_options": {"include_usage": True}}
    decoder, output = decode(
        anthropic_stream(list(stream_events("claude-x"))), byte_by_byte=False, request=request
    )
    chunks = payloads(output)
    assert chunks[-1] == "[DONE]"
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2] == {
        "id": MESSAGE_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "claude-x",
        "choices": [],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    assert decoder.usage == Usage(11, 7)


def test_tool_stream_reassembles_arguments() -> None:
    decoder, output = decode(anthropic_stream(list(stream_events("tool-model"))), byte_by_byte=True)
    chunks = payloads(output)
    calls = [call for delta in deltas(chunks) for call in delta.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": scenarios.TOOL_CALL_ID,
        "type": "function",
        "function": {"name": scenarios.TOOL_NAME, "arguments": ""},
    }
    assert len(calls) == 1 + len(scenarios.TOOL_ARG_PIECES)
    assert "".join(call["function"]["arguments"] for call in calls) == scenarios.TOOL_ARGS
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert decoder.done


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def test_tool_call_indexes_count_tool_calls_only() -> None:
    """Text at block 0, tools at blocks 1 and 2: OpenAI tool indexes 0 and 1, arguments kept apart."""
    events = [
        (
            "message_start",
            {"type": "message_start", "message": {"id": "msg_t", "model": "m", "usage": {"input_tokens": 5}}},
        ),
        block_start(0, text("")),
        block_delta(0, {"type": "text_delta", "text": "Checking."}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        block_delta(1, {"type": "input_json_delta", "partial_json": ""}),
        block_delta(1, {"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
        block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}}),
        block_delta(2, {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'}),
        block_delta(1, {"type": "input_json_delta", "partial_json": 'ris"}'}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    decoder, output = decode(anthropic_stream(events), byte_by_byte=False)
    calls = [call for delta in deltas(payloads(output)) for call in delta.get("tool_calls", [])]
    arguments: dict[int, str] = {}
    for call in calls:
        arguments[call["index"]] = arguments.get(call["index"], "") + call["function"]["arguments"]
    assert arguments == {0: '{"city": "Paris"}', 1: '{"city": "Oslo"}'}
    assert [(call["index"], call["id"]) for call in calls if "id" in call] == [(0, "toolu_a"), (1, "toolu_b")]
    assert decoder.usage == Usage(5, 30)


def test_error_event_mid_stream() -> None:
    """An ``error`` event fails the stream: its error is rendered last, and nothing after it is decoded."""
    normal = list(stream_events("claude-x"))
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = [*normal[:4], ("error", overloaded), *normal[4:]]
    for byte_by_byte in (False, True):
        decoder, output = decode(anthropic_stream(events), byte_by_byte=byte_by_byte)
        chunks = payloads(output)
        assert chunks[-1] == {
            "error": {"message": "Overloaded", "type": "api_error", "code": "overloaded_error", "param": None}
        }
        assert deltas(chunks[:-1])[1:] == [{"content": scenarios.STREAM_PIECES[0]}]  # nothing after the error
        assert (decoder.done, decoder.failed) == (False, True)
        assert decoder.usage == Usage(scenarios.PROMPT_TOKENS, 1)


def test_unreadable_event_fails_the_stream() -> None:
    """An event that is not JSON yields no item: the decoder fails with a protocol error instead."""
    decoder = make_translator().stream_decoder({"messages": [user("hi")]}, make_target())
    assert decoder.feed(b"event: message_start\ndata: {not json\n\n") == []
    assert decoder.finish() == []
    assert (decoder.done, decoder.failed) == (False, True)
    assert decoder.error is not None
    assert decoder.error.code == "bad_upstream_response"
    (event,) = payloads(b"".join(openai_events(decoder, [])))
    assert event["error"]["code"] == "bad_upstream_response"


def test_ping_comments_and_unknown_events_are_skipped_and_eof_flushes() -> None:
    data = (
        b": keep-alive\n\n"
        + sse("ping", {"type": "ping"})
        + sse("message_start", {"type": "message_start", "message": {"id": "msg_p", "model": "m"}})
        + sse("future_event", {"type": "future_event", "x": 1})
        + sse("message_stop", {"type": "message_stop"}).rstrip(b"\n")  # upstream closed without blank line
    )
    decoder, output = decode(data, byte_by_byte=False)
    assert payloads(output)[-1] == "[DONE]"
    assert len(payloads(output)) == 2
    assert decoder.done
    assert decoder.usage is None


def test_broken_stream_is_not_done() -> None:
    data = anthropic_stream(list(stream_events("claude-x"))[:3])
    decoder, _ = decode(data, byte_by_byte=False)
    assert (decoder.done, decoder.failed) == (False, False)


# --- errors -------------------------------------------------------------------------------------


def error_body(error_type: str, message: str = "boom") -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_1"}
    )


@pytest.mark.parametrize(
    ("status", "error_type", "openai_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "not_found_error"),
        (413, "request_too_large", "invalid_request_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "api_error", "api_error"),
        (529, "overloaded_error", "api_error"),
    ],
)
def test_error_mapping(status: int, error_type: str, openai_type: str) -> None:
    mapped = make_translator().error(status, error_body(error_type), {})
    assert mapped == MappedError(status=status, message="boom", type=openai_type, code=error_type)


def test_unknown_error_type_falls_back_to_the_status() -> None:
    mapped = make_translator().error(402, error_body("billing_error"), {})
    assert (mapped.type, mapped.code) == ("invalid_request_error", "billing_error")


def test_non_json_error_keeps_a_bounded_excerpt() -> None:
    mapped = make_translator().error(502, b"<html>" + b"x" * 5000 + b"</html>", {})
    assert mapped.status == 502
    assert mapped.type == "api_error"
    assert mapped.message.startswith("upstream returned HTTP 502: <html>xxx")
    assert len(mapped.message) < 600


# --- against the fake upstream, over HTTP ---------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    with serve_in_thread(make_app(recorder)) as url:
        yield url, recorder


def test_provider_config_points_at_the_fake() -> None:
    config = ProviderConfig.model_validate(provider_config("http://127.0.0.1:1234"))
    assert (config.type, config.base_url) == ("anthropic", "http://127.0.0.1:1234/v1")
    assert config.keys[0].secret == "env:ASBRU_TEST_ANTHROPIC_KEY"


def test_sdk_non_streaming(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    with anthropic.Anthropic(api_key="sk-test", base_url=url, max_retries=0) as client:
        message = client.messages.create(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert [block.type for block in message.content] == ["text"]
        assert message.content[0].text == scenarios.TEXT  # type: ignore[union-attr]
        assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 7)
        assert message.stop_reason == "end_turn"
        tool = client.messages.create(
            model="tool-model", max_tokens=64, messages=[{"role": "user", "content": "weather?"}]
        )
        assert tool.stop_reason == "tool_use"
        block = tool.content[0]
        assert block.type == "tool_use"
        assert (block.id, block.name, block.input) == (
            scenarios.TOOL_CALL_ID,
            scenarios.TOOL_NAME,
            {"city": "Paris"},
        )
    assert recorder.requests[0].headers["anthropic-version"]


def test_sdk_streaming(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    with anthropic.Anthropic(api_key="sk-test", base_url=url, max_retries=0) as client:
        with client.messages.stream(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        assert pieces == list(scenarios.STREAM_PIECES)
        assert final.content[0].text == scenarios.TEXT  # type: ignore[union-attr]
        assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == ("end_turn", 11, 7)
        with client.messages.stream(
            model="tool-model", max_tokens=64, messages=[{"role": "user", "content": "weather?"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.stop_reason == "tool_use"
        assert final.content[0].input == {"city": "Paris"}  # type: ignore[union-attr]


def test_sdk_sees_errors(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    with anthropic.Anthropic(api_key="sk-test", base_url=url, max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError) as rate_limited:
            client.messages.create(
                model="error-429", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        assert rate_limited.value.response.headers["retry-after"] == "0"
        assert scenarios.ERROR_MESSAGE in str(rate_limited.value)
        with pytest.raises(anthropic.APIStatusError) as overloaded:
            client.messages.create(
                model="error-529", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        assert overloaded.value.status_code == 529


def test_fake_requires_auth_headers_and_max_tokens(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url) as client:
        response = client.post("/v1/messages", json={**body, "max_tokens": 8})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        response = client.post("/v1/messages", json=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_fake_hang_never_answers(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    body = {"model": "hang", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=url, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/v1/messages", json=body, headers=headers)
    assert recorder.requests[0].json["model"] == "hang"


def test_translator_round_trip_through_the_fake(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    translator = make_translator()
    target = make_target("tool-model", base_url=f"{url}/v1", api_key="sk-test")
    request = {"model": "client-name", "messages": [user("weather?")], "tools": [WEATHER_TOOL]}
    with httpx.Client() as client:
        upstream = translator.chat_request(request, target, stream=False)
        response = client.post(upstream.url, content=upstream.body, headers=upstream.headers)
        assert response.status_code == 200
        result = translator.chat_response(response.content, target)
        call = orjson.loads(result.body)["choices"][0]["message"]["tool_calls"][0]
        assert orjson.loads(call["function"]["arguments"]) == orjson.loads(scenarios.TOOL_ARGS)
        assert result.usage == Usage(11, 7)

        upstream = translator.chat_request(request, target, stream=True)
        decoder = translator.stream_decoder(request, target)
        items: list[Any] = []
        with client.stream("POST", upstream.url, content=upstream.body, headers=upstream.headers) as streamed:
            assert streamed.headers["content-type"].startswith("text/event-stream")
            for piece in streamed.iter_raw():
                items.extend(decoder.feed(piece))
        items.extend(decoder.finish())
        assert decoder.done
        events = b"".join(openai_events(decoder, items))
        calls = [call for delta in deltas(payloads(events)) for call in delta.get("tool_calls", [])]
        assert "".join(call["function"]["arguments"] for call in calls) == scenarios.TOOL_ARGS

        error_target = make_target("error-429", base_url=f"{url}/v1", api_key="sk-test")
        upstream = translator.chat_request(request, error_target, stream=False)
        response = client.post(upstream.url, content=upstream.body, headers=upstream.headers)
        mapped = translator.error(response.status_code, response.content, response.headers)
        assert mapped == MappedError(429, scenarios.ERROR_MESSAGE, "rate_limit_error", "rate_limit_error")
    assert recorder.requests[0].json["model"] == "tool-model"
    assert recorder.requests[1].json["stream"] is True
