"""The Gemini translator, bytes in / bytes out, plus the fake Gemini upstream against the real SDK."""

from __future__ import annotations

import copy
import re
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError

import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.errors import InvalidRequestError, UnsupportedError, UpstreamProtocolError
from asbru_gateway.providers.base import EmbeddingsTranslator, Target, Translator
from asbru_gateway.providers.gemini.errors import map_error
from asbru_gateway.providers.gemini.stream import GeminiStreamDecoder
from asbru_gateway.providers.gemini.translator import GeminiTranslator
from tests.fakes import gemini as fake_gemini
from tests.fakes import scenarios
from tests.fakes.server import Recorder, serve_in_thread
from tests.providers.openai_sse import openai_events

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
KEY = "test-gemini-key"


@pytest.fixture
def config() -> ProviderConfig:
    return ProviderConfig.model_validate(
        {"name": "gemini", "type": "gemini", "network": {"headers": {"x-team": "blue"}}}
    )


@pytest.fixture
def translator(config: ProviderConfig) -> GeminiTranslator:
    return GeminiTranslator(config)


@pytest.fixture
def target(config: ProviderConfig) -> Target:
    return Target(base_url=BASE_URL, model="gemini-2.5-flash", api_key=KEY, config=config)


def body_of(translator: GeminiTranslator, target: Target, request: dict[str, Any]) -> dict[str, Any]:
    upstream = translator.chat_request(request, target, stream=False)
    result: dict[str, Any] = orjson.loads(upstream.body)
    return result


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# --- request ------------------------------------------------------------------------------------


def test_satisfies_the_provider_contract(translator: GeminiTranslator) -> None:
    assert isinstance(translator, EmbeddingsTranslator)
    _: Translator = translator


def test_url_and_headers_keep_the_key_out_of_the_url(translator: GeminiTranslator, target: Target) -> None:
    plain = translator.chat_request({"messages": [user("hi")]}, target, stream=False)
    streamed = translator.chat_request({"messages": [user("hi")]}, target, stream=True)
    assert plain.url == f"{BASE_URL}/models/gemini-2.5-flash:generateContent"
    assert streamed.url == f"{BASE_URL}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert plain.method == "POST"
    assert plain.headers == {"content-type": "application/json", "x-team": "blue", "x-goog-api-key": KEY}
    assert KEY not in plain.url
    assert KEY not in streamed.url


def test_models_prefix_in_the_target_model_is_accepted(
    translator: GeminiTranslator, config: ProviderConfig
) -> None:
    target = Target(base_url=BASE_URL, model="models/gemini-pro", api_key=KEY, config=config)
    assert translator.chat_request({"messages": [user("hi")]}, target, stream=False).url.endswith(
        "/models/gemini-pro:generateContent"
    )


def test_system_messages_and_roles(translator: GeminiTranslator, target: Target) -> None:
    request = {
        "model": "client-name",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            user("Hello"),
            user([{"type": "text", "text": "again"}]),
            {"role": "assistant", "content": "Bonjour"},
            {"role": "assistant", "content": ""},
            user("Thanks"),
        ],
    }
    body = body_of(translator, target, request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hello"}, {"text": "again"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]
    assert "model" not in body
    assert "messages" not in body


def test_images_inline_and_by_url(translator: GeminiTranslator, target: Target) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?size=2", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/render"}},
    ]
    parts = body_of(translator, target, {"messages": [user(content)]})["contents"][0]["parts"]
    assert parts == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=2"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/render"}},
    ]


def tool_conversation() -> list[dict[str, Any]]:
    return [
        user("Weather in Paris and Oslo?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "12:00"}]},
    ]


def test_tool_calls_and_tool_results(translator: GeminiTranslator, target: Target) -> None:
    body = body_of(translator, target, {"messages": tool_conversation()})
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": {"temp": 21}}}},
                {"functionResponse": {"name": "get_time", "response": {"result": {"content": "12:00"}}}},
            ],
        },
    ]


def test_thought_signature_round_trips_into_the_request(translator: GeminiTranslator, target: Target) -> None:
    messages = tool_conversation()
    messages[1]["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": "c2ln"}}
    parts = body_of(translator, target, {"messages": messages})["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "c2ln"
    assert "thoughtSignature" not in parts[1]


def test_tools_and_generation_config(translator: GeminiTranslator, target: Target) -> None:
    request = {
        "messages": [user("hi")],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "strict": True,
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"]}},
                        "required": ["city"],
                        "additionalProperties": False,
                    },
                },
            },
            {
                "type": "function",
                "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
            },
        ],
        "tool_choice": "required",
        "max_tokens": 50,
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "n": 2,
        "seed": 7,
        "response_format": {"type": "json_object"},
    }
    body = body_of(translator, target, request)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "nullable": True},
                        },
                        "required": ["city"],
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice(
    translator: GeminiTranslator, target: Target, choice: Any, expected: dict[str, Any]
) -> None:
    body = body_of(translator, target, {"messages": [user("hi")], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_json_schema_response_format_and_stop_list(translator: GeminiTranslator, target: Target) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "additionalProperties": False,
    }
    request = {
        "messages": [user("hi")],
        "stop": ["a", "b"],
        "max_tokens": 5,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": True},
        },
    }
    config = body_of(translator, target, request)["generationConfig"]
    assert config == {
        "maxOutputTokens": 5,
        "stopSequences": ["a", "b"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"n": {"type": "integer", "nullable": True}}},
    }


def test_request_is_not_mutated(translator: GeminiTranslator, target: Target) -> None:
    request = {
        "messages": tool_conversation(),
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {}}}},
            }
        ],
        "stop": ["x"],
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    before = copy.deepcopy(request)
    translator.chat_request(request, target, stream=True)
    assert request == before


@pytest.mark.parametrize(
    ("request_patch", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [user([{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}])]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"messages": [user([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "1"}]},
            "messages[0].tool_call_id",
        ),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"n": True}, "n"),
        ({"stop": [1]}, "stop"),
        ({"tool_choice": "always"}, "tool_choice"),
        ({"tool_choice": {"type": "function"}}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ],
)
def test_bad_input_is_an_invalid_request(
    translator: GeminiTranslator, target: Target, request_patch: dict[str, Any], param: str
) -> None:
    request = {"messages": [user("hi")], **request_patch}
    with pytest.raises(InvalidRequestError) as caught:
        translator.chat_request(request, target, stream=False)
    assert caught.value.param == param


def test_invalid_tool_call_arguments(translator: GeminiTranslator, target: Target) -> None:
    messages = tool_conversation()
    messages[1]["tool_calls"][0]["function"]["arguments"] = "{not json"
    with pytest.raises(InvalidRequestError) as caught:
        translator.chat_request({"messages": messages}, target, stream=False)
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


def test_unsupported_parts_and_tools(translator: GeminiTranslator, target: Target) -> None:
    with pytest.raises(UnsupportedError):
        translator.chat_request({"messages": [user([{"type": "video", "video": {}}])]}, target, stream=False)
    with pytest.raises(UnsupportedError):
        translator.chat_request(
            {"messages": [user("x")], "tools": [{"type": "web_search"}]}, target, stream=False
        )


# --- response -----------------------------------------------------------------------------------


def gemini_answer(parts: list[dict[str, Any]], reason: str | None = "STOP", **extra: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if reason:
        candidate["finishReason"] = reason
    return orjson.dumps({"candidates": [candidate], **extra})


def test_text_response(translator: GeminiTranslator, target: Target) -> None:
    body = gemini_answer(
        [{"text": "thinking...", "thought": True}, {"text": "Hello"}, {"text": " world"}],
        usageMetadata={"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 4},
        modelVersion="gemini-2.5-flash-001",
        responseId="resp-1",
    )
    result = translator.chat_response(body, target)
    completion = orjson.loads(result.body)
    assert completion["id"] == "chatcmpl-resp-1"
    assert completion["object"] == "chat.completion"
    assert isinstance(completion["created"], int)
    assert completion["model"] == "gemini-2.5-flash-001"
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello world"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert completion["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 7)


def test_function_call_response(translator: GeminiTranslator, target: Target) -> None:
    body = gemini_answer(
        [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"id": "given-id", "name": "get_time", "args": {}}},
        ]
    )
    completion = orjson.loads(translator.chat_response(body, target).body)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]{24}", first["id"])
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert first["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert second["id"] == "given-id"
    assert second["function"] == {"name": "get_time", "arguments": "{}"}
    again = orjson.loads(translator.chat_response(body, target).body)
    assert again["choices"][0]["message"]["tool_calls"][0]["id"] == first["id"]  # stable per response
    assert completion["model"] == target.model
    assert completion["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(
    translator: GeminiTranslator, target: Target, reason: str | None, expected: str
) -> None:
    completion = orjson.loads(translator.chat_response(gemini_answer([{"text": "x"}], reason), target).body)
    assert completion["choices"][0]["finish_reason"] == expected


def test_several_candidates(translator: GeminiTranslator, target: Target) -> None:
    body = orjson.dumps(
        {
            "candidates": [
                {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
                {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS", "index": 1},
            ]
        }
    )
    choices = orjson.loads(translator.chat_response(body, target).body)["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "a", "stop"),
        (1, "b", "length"),
    ]


def test_blocked_prompt(translator: GeminiTranslator, target: Target) -> None:
    body = orjson.dumps(
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
        }
    )
    result = translator.chat_response(body, target)
    completion = orjson.loads(result.body)
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert result.usage is not None
    assert result.usage.prompt_tokens == 4


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b""])
def test_response_that_is_not_a_json_object(
    translator: GeminiTranslator, target: Target, body: bytes
) -> None:
    with pytest.raises(UpstreamProtocolError):
        translator.chat_response(body, target)


# --- stream -------------------------------------------------------------------------------------


def sse(*chunks: dict[str, Any], separator: bytes = b"\r\n\r\n") -> bytes:
    return b"".join(b"data: " + orjson.dumps(chunk) + separator for chunk in chunks)


def text_stream() -> bytes:
    usage_final = {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
    return sse(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Héllo"}]}}],
            "responseId": "r1",
            "modelVersion": "gemini-x",
            "usageMetadata": {"promptTokenCount": 3},
        },
        {"candidates": [{"content": {"role": "model", "parts": [{"text": " wörld"}]}}], "responseId": "r1"},
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP"}],
            "responseId": "r1",
            "usageMetadata": usage_final,
        },
    )


def decode(decoder: GeminiStreamDecoder, data: bytes, *, byte_by_byte: bool) -> list[bytes]:
    """Feed ``data`` (whole or one byte at a time), finish, and return the OpenAI SSE events the client sees.

    The decoder yields core chunks and flags; ``openai_events`` renders them as the relay would, so
    ``[DONE]`` (after a normal end) and the error event (after a failure) are among the events.
    """
    pieces: Iterator[bytes] = (data[i : i + 1] for i in range(len(data))) if byte_by_byte else iter([data])
    items: list[Any] = []
    for piece in pieces:
        items.extend(decoder.feed(piece))
    items.extend(decoder.finish())
    return openai_events(decoder, items)


def payloads(events: list[bytes]) -> list[Any]:
    assert all(event.startswith(b"data: ") and event.endswith(b"\n\n") for event in events)
    return [
        event[6:-2].decode() if event == b"data: [DONE]\n\n" else orjson.loads(event[6:-2])
        for event in events
    ]


def normalised(events: list[bytes]) -> list[bytes]:
    return [re.sub(rb'"created":\d+', b'"created":0', event) for event in events]


@pytest.mark.parametrize("include_usage", [False, True])
def test_text_stream_byte_by_byte_equals_one_piece(
    translator: GeminiTranslator, target: Target, include_usage: bool
) -> None:
    request: dict[str, Any] = {"messages": [user("hi")], "stream": True}
    if include_usage:
        request["stream_options"] = {"include_usage": True}
    whole = translator.stream_decoder(request, target)
    split = translator.stream_decoder(request, target)
    events = decode(whole, text_stream(), byte_by_byte=False)
    assert normalised(decode(split, text_stream(), byte_by_byte=True)) == normalised(events)
    decoded = payloads(events)
    assert decoded[-1] == "[DONE]"
    chunks = decoded[:-1]
    assert {chunk["id"] for chunk in chunks} == {"chatcmpl-r1"}
    assert {chunk["model"] for chunk in chunks} == {"gemini-x"}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    deltas = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]
    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Héllo"}, None),
        ({"content": " wörld"}, None),
        ({"content": "!"}, None),
        ({}, "stop"),
    ]
    if include_usage:
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    else:
        assert all("usage" not in chunk for chunk in chunks)
    for decoder in (whole, split):
        assert decoder.done
        assert not decoder.failed
        assert decoder.usage is not None
        assert (decoder.usage.prompt_tokens, decoder.usage.completion_tokens) == (3, 4)


def test_tool_call_stream(translator: GeminiTranslator, target: Target) -> None:
    data = sse(
        {"candidates": [{"content": {"parts": [{"text": "Let me check."}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                            {"functionCall": {"id": "t2", "name": "get_time", "args": {}}},
                        ]
                    },
                    "finishReason": "STOP",
                }
            ]
        },
        separator=b"\n\n",
    )
    decoder = translator.stream_decoder({"messages": [user("hi")]}, target)
    events = decode(decoder, data, byte_by_byte=False)
    assert normalised(decode(translator.stream_decoder({}, target), data, byte_by_byte=True)) == normalised(
        events
    )
    chunks = payloads(events)
    tool_delta = chunks[2]["choices"][0]["delta"]["tool_calls"]
    assert [(call["index"], call["type"], call["function"]) for call in tool_delta] == [
        (0, "function", {"name": "get_weather", "arguments": '{"city":"Paris"}'}),
        (1, "function", {"name": "get_time", "arguments": "{}"}),
    ]
    assert re.fullmatch(r"call_[0-9a-f]{24}", tool_delta[0]["id"])
    assert tool_delta[1]["id"] == "t2"
    assert chunks[3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1] == "[DONE]"
    assert decoder.done
    assert decoder.usage is None


def test_stream_without_finish_reason_is_broken(translator: GeminiTranslator, target: Target) -> None:
    data = sse({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})
    decoder = translator.stream_decoder({"stream_options": {"include_usage": True}}, target)
    events = decode(decoder, data[:-3], byte_by_byte=False)  # the last event is not even terminated
    assert [chunk["choices"][0]["delta"] for chunk in payloads(events)] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
    ]
    assert not decoder.done
    assert not decoder.failed


def test_error_inside_the_stream(translator: GeminiTranslator, target: Target) -> None:
    """An ``error`` object fails the stream: its error is rendered last, and nothing after it is decoded."""
    data = sse(
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}]},
    )
    decoder = translator.stream_decoder({}, target)
    events = decode(decoder, data, byte_by_byte=True)
    decoded = payloads(events)
    assert decoded[-1] == {
        "error": {
            "message": "The model is overloaded.",
            "type": "api_error",
            "code": "UNAVAILABLE",
            "param": None,
        }
    }
    assert [chunk["choices"][0]["delta"] for chunk in decoded[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
    ]
    assert decoder.failed
    assert not decoder.done
    assert decoder.feed(data) == []


def test_stream_event_that_is_not_json_fails_the_stream(translator: GeminiTranslator, target: Target) -> None:
    """An event that is not JSON yields no item: the decoder fails with a protocol error instead."""
    decoder = translator.stream_decoder({}, target)
    assert decoder.feed(b"data: {broken\n\n") == []
    assert decoder.finish() == []
    assert decoder.failed
    assert not decoder.done
    assert decoder.error is not None
    assert decoder.error.code == "bad_upstream_response"
    (event,) = payloads(openai_events(decoder, []))
    assert event["error"]["code"] == "bad_upstream_response"


def test_blocked_prompt_stream(translator: GeminiTranslator, target: Target) -> None:
    decoder = translator.stream_decoder({}, target)
    events = decode(
        decoder, sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}), byte_by_byte=False
    )
    chunks = payloads(events)
    assert chunks[1]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[-1] == "[DONE]"
    assert decoder.done


def test_stream_ignores_comments(translator: GeminiTranslator, target: Target) -> None:
    decoder = translator.stream_decoder({}, target)
    assert decoder.feed(b": keep-alive\n\n") == []
    assert decoder.finish() == []
    assert not decoder.done


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "google_status", "expected_type"),
    [
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (400, "FAILED_PRECONDITION", "invalid_request_error"),
        (401, "UNAUTHENTICATED", "authentication_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (429, "RESOURCE_EXHAUSTED", "rate_limit_error"),
        (500, "INTERNAL", "api_error"),
        (503, "UNAVAILABLE", "api_error"),
        (504, "DEADLINE_EXCEEDED", "api_error"),
    ],
)
def test_error_mapping(
    translator: GeminiTranslator, status: int, google_status: str, expected_type: str
) -> None:
    body = orjson.dumps({"error": {"code": status, "message": "nope", "status": google_status}})
    mapped = translator.error(status, body, {})
    assert (mapped.status, mapped.type, mapped.code, mapped.message) == (
        status,
        expected_type,
        google_status,
        "nope",
    )


def test_error_in_a_list_and_invalid_key(translator: GeminiTranslator) -> None:
    error = {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
    }
    mapped = translator.error(400, orjson.dumps([{"error": error}]), {})
    assert (mapped.status, mapped.type, mapped.code) == (400, "authentication_error", "INVALID_ARGUMENT")


def test_error_that_is_not_json_is_a_bounded_excerpt(translator: GeminiTranslator) -> None:
    mapped = translator.error(502, b"<html>" + b"x" * 5000 + b"</html>", {})
    assert mapped.status == 502
    assert mapped.type == "api_error"
    assert mapped.code is None
    assert mapped.message.startswith("upstream returned HTTP 502: <html>xxx")
    assert len(mapped.message) < 600


# --- embeddings ---------------------------------------------------------------------------------


def test_embeddings(translator: GeminiTranslator, config: ProviderConfig) -> None:
    target = Target(base_url=BASE_URL, model="text-embedding-004", api_key=KEY, config=config)
    upstream = translator.embeddings_request({"input": ["a", "b"], "dimensions": 8, "model": "emb"}, target)
    assert upstream.url == f"{BASE_URL}/models/text-embedding-004:batchEmbedContents"
    assert upstream.headers["x-goog-api-key"] == KEY
    assert orjson.loads(upstream.body) == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 8,
            }
            for t in ("a", "b")
        ]
    }
    answer = translator.embeddings_response(
        orjson.dumps({"embeddings": [{"values": [0.5]}, {"values": [1.5]}]}), target
    )
    assert orjson.loads(answer.body) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5]},
            {"object": "embedding", "index": 1, "embedding": [1.5]},
        ],
        "model": "text-embedding-004",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    with pytest.raises(UnsupportedError):
        translator.embeddings_request({"input": [[1, 2, 3]]}, target)


# --- the fake upstream --------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    with serve_in_thread(fake_gemini.make_app(recorder)) as url:
        yield url, recorder


def send(request: Any, timeout: float = 10) -> tuple[int, bytes]:
    """POST an UpstreamRequest with the standard library (no proxy): the fake, not a client, is tested."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    assert request.url.startswith("http://127.0.0.1:")
    http_request = urllib.request.Request(  # noqa: S310 - checked above: the local fake only
        request.url, data=request.body, headers=request.headers, method="POST"
    )
    try:
        with opener.open(http_request, timeout=timeout) as response:
            return response.status, response.read()
    except HTTPError as error:
        with error:
            return error.code, error.read()


def fake_target(url: str, model: str, config: ProviderConfig) -> Target:
    return Target(base_url=f"{url}/v1beta", model=model, api_key=KEY, config=config)


def test_translator_against_the_fake(
    fake: tuple[str, Recorder], translator: GeminiTranslator, config: ProviderConfig
) -> None:
    url, recorder = fake
    request = {"messages": [user("hi")], "stream_options": {"include_usage": True}}

    text_target = fake_target(url, "gemini-test", config)
    status, body = send(translator.chat_request(request, text_target, stream=False))
    assert status == 200
    completion = orjson.loads(translator.chat_response(body, text_target).body)
    assert completion["choices"][0]["message"]["content"] == scenarios.TEXT
    assert completion["usage"]["prompt_tokens"] == scenarios.PROMPT_TOKENS
    assert {name.lower(): value for name, value in recorder.requests[0].headers.items()}[
        "x-goog-api-key"
    ] == KEY
    assert recorder.requests[0].json == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    status, body = send(translator.chat_request(request, text_target, stream=True))
    decoder = translator.stream_decoder(request, text_target)
    chunks = payloads(decode(decoder, body, byte_by_byte=True))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if c["choices"])
    assert text == scenarios.TEXT
    assert decoder.done
    assert decoder.usage is not None
    assert decoder.usage.completion_tokens == scenarios.COMPLETION_TOKENS

    tool_target = fake_target(url, "gemini-tool", config)
    status, body = send(translator.chat_request(request, tool_target, stream=True))
    chunks = payloads(decode(translator.stream_decoder(request, tool_target), body, byte_by_byte=False))
    (call,) = chunks[1]["choices"][0]["delta"]["tool_calls"]
    assert call["id"] == scenarios.TOOL_CALL_ID
    assert call["function"]["name"] == scenarios.TOOL_NAME
    assert orjson.loads(call["function"]["arguments"]) == orjson.loads(scenarios.TOOL_ARGS)

    error_target = fake_target(url, "error-429", config)
    status, body = send(translator.chat_request(request, error_target, stream=False))
    mapped = translator.error(status, body, {})
    assert (mapped.status, mapped.type, mapped.message) == (429, "rate_limit_error", scenarios.ERROR_MESSAGE)


def test_fake_requires_the_api_key(
    fake: tuple[str, Recorder], translator: GeminiTranslator, config: ProviderConfig
) -> None:
    url, _ = fake
    keyless = Target(base_url=f"{url}/v1beta", model="gemini-test", api_key=None, config=config)
    status, body = send(translator.chat_request({"messages": [user("hi")]}, keyless, stream=False))
    assert status == 401
    assert translator.error(status, body, {}).code == "UNAUTHENTICATED"


def test_provider_config_snippet() -> None:
    snippet = fake_gemini.provider_config("http://127.0.0.1:1")
    provider = ProviderConfig.model_validate(snippet)
    assert provider.base_url == "http://127.0.0.1:1/v1beta"
    assert provider.type == "gemini"
    assert provider.keys[0].secret == "env:ASBRU_TEST_GEMINI_KEY"


def sdk_client(url: str) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=url,
        api_version="v1beta",
        retry_options=genai_types.HttpRetryOptions(attempts=1),
        timeout=10_000,
    )
    return genai.Client(api_key="dummy-key", http_options=options)


def test_official_sdk_talks_to_the_fake(fake: tuple[str, Recorder]) -> None:
    url, recorder = fake
    with sdk_client(url) as client:
        sdk_round_trips(client)
    paths = [(item.path, item.query.get("alt")) for item in recorder.requests]
    assert paths[:2] == [
        ("/v1beta/models/gemini-test:generateContent", None),
        ("/v1beta/models/gemini-test:streamGenerateContent", "sse"),
    ]
    keys = [
        value
        for item in recorder.requests
        for name, value in item.headers.items()
        if name.lower() == "x-goog-api-key"
    ]
    assert keys == ["dummy-key"] * len(recorder.requests)


def sdk_round_trips(client: genai.Client) -> None:
    answer = client.models.generate_content(model="gemini-test", contents="hi")
    assert answer.text == scenarios.TEXT
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.prompt_token_count == scenarios.PROMPT_TOKENS
    assert answer.usage_metadata.candidates_token_count == scenarios.COMPLETION_TOKENS
    assert answer.candidates
    assert answer.candidates[0].finish_reason == genai_types.FinishReason.STOP

    pieces = [
        chunk.text for chunk in client.models.generate_content_stream(model="gemini-test", contents="hi")
    ]
    assert pieces == list(scenarios.STREAM_PIECES)

    tool_answer = client.models.generate_content(model="gemini-tool", contents="weather?")
    (call,) = tool_answer.function_calls or []
    assert (call.id, call.name, call.args) == (scenarios.TOOL_CALL_ID, scenarios.TOOL_NAME, {"city": "Paris"})

    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="error-429", contents="hi")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"


def test_fake_hang_scenario_never_answers(
    fake: tuple[str, Recorder], translator: GeminiTranslator, config: ProviderConfig
) -> None:
    url, recorder = fake
    request = translator.chat_request(
        {"messages": [user("hi")]}, fake_target(url, "hang", config), stream=True
    )
    with pytest.raises(TimeoutError):
        send(request, timeout=0.3)
    assert recorder.requests[0].path == "/v1beta/models/hang:streamGenerateContent"


def test_retry_info_in_a_429_body_becomes_retry_after() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "message": "quota",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}],
            }
        }
    )
    mapped = map_error(429, body)
    assert mapped.retry_after == 13.0
    assert map_error(429, orjson.dumps({"error": {"code": 429, "message": "q"}})).retry_after is None


def test_core_extensions_top_k_and_thinking(translator: GeminiTranslator, target: Target) -> None:
    """The core's ``top_k`` and ``thinking`` extensions reach Gemini (a Gemini client's request
    translated through the core, e.g. for a chunk hook, keeps them)."""
    body = body_of(
        translator, target, {"messages": [user("hi")], "top_k": 5, "thinking": {"budget_tokens": 128}}
    )
    assert body["generationConfig"] == {"topK": 5, "thinkingConfig": {"thinkingBudget": 128}}
    with pytest.raises(InvalidRequestError):
        body_of(translator, target, {"messages": [user("hi")], "thinking": {"budget_tokens": "lots"}})
