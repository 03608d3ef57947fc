"""Gemini pass-through (``NativeTranslator``): the client's own body to Gemini, bytes in / bytes out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.core.formats import GEMINI_COUNT_TOKENS, GEMINI_EMBED, GEMINI_GENERATE
from asbru_gateway.errors import UpstreamProtocolError
from asbru_gateway.providers.base import NativeTranslator, Target
from asbru_gateway.providers.gemini.native import GeminiPassthroughDecoder
from asbru_gateway.providers.gemini.translator import GeminiTranslator

BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


@pytest.fixture
def translator() -> GeminiTranslator:
    return GeminiTranslator(ProviderConfig.model_validate({"name": "gemini", "type": "gemini"}))


@pytest.fixture
def target() -> Target:
    config = ProviderConfig.model_validate({"name": "gemini", "type": "gemini"})
    return Target(base_url=BASE_URL, model="models/gemini-2.5-flash", api_key="k", config=config)


def sent(
    translator: GeminiTranslator, target: Target, format: str, body: dict[str, Any], **kw: Any
) -> tuple[str, Any]:
    upstream = translator.native_request(
        format, body, target, stream=kw.get("stream", False), extra_tools=kw.get("extra_tools", [])
    )
    assert upstream.headers["x-goog-api-key"] == "k"
    return upstream.url, orjson.loads(upstream.body)


def test_is_a_native_translator(translator: GeminiTranslator) -> None:
    assert isinstance(translator, NativeTranslator)
    assert translator.native_formats == {GEMINI_GENERATE, GEMINI_EMBED, GEMINI_COUNT_TOKENS}


def test_generate_forwards_the_body_untouched(translator: GeminiTranslator, target: Target) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}], "safetySettings": [{"x": 1}], "brandNew": {"a": [1]}}
    url, forwarded = sent(translator, target, GEMINI_GENERATE, body)
    assert url == f"{BASE_URL}/models/gemini-2.5-flash:generateContent"
    assert forwarded == body
    url, _ = sent(translator, target, GEMINI_GENERATE, body, stream=True)
    assert url == f"{BASE_URL}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def test_generate_drops_a_model_field_and_adds_plugin_tools(
    translator: GeminiTranslator, target: Target
) -> None:
    body = {
        "model": "client-name",
        "contents": [],
        "tools": [{"googleSearch": {}}, {"function_declarations": [{"name": "own"}]}],
    }
    _, forwarded = sent(translator, target, GEMINI_GENERATE, body, extra_tools=[TOOL])
    assert "model" not in forwarded
    assert forwarded["tools"] == [
        {"googleSearch": {}},
        {
            "function_declarations": [
                {"name": "own"},
                {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
            ]
        },
    ]
    assert (
        body["model"] == "client-name" and len(body["tools"][1]["function_declarations"]) == 1
    )  # not mutated
    _, bare = sent(translator, target, GEMINI_GENERATE, {"contents": []}, extra_tools=[TOOL])
    assert bare["tools"] == [{"functionDeclarations": [forwarded["tools"][1]["function_declarations"][1]]}]


def test_embed_and_count_set_the_target_model_where_google_requires_one(
    translator: GeminiTranslator, target: Target
) -> None:
    url, batch = sent(
        translator,
        target,
        GEMINI_EMBED,
        {"requests": [{"model": "models/x", "content": {}, "taskType": "T"}]},
    )
    assert url.endswith("/models/gemini-2.5-flash:batchEmbedContents")
    assert batch == {"requests": [{"model": "models/gemini-2.5-flash", "content": {}, "taskType": "T"}]}
    url, single = sent(translator, target, GEMINI_EMBED, {"model": "x", "content": {"parts": []}})
    assert url.endswith(":embedContent") and single == {"content": {"parts": []}}
    url, count = sent(translator, target, GEMINI_COUNT_TOKENS, {"contents": []})
    assert url.endswith(":countTokens") and count == {"contents": []}
    _, wrapped = sent(translator, target, GEMINI_COUNT_TOKENS, {"generate_content_request": {"contents": []}})
    assert wrapped == {"generateContentRequest": {"contents": [], "model": "models/gemini-2.5-flash"}}


def test_native_response_reads_usage(translator: GeminiTranslator, target: Target) -> None:
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 1}
    body = orjson.dumps({"candidates": [], "usageMetadata": usage})
    reply = translator.native_response(GEMINI_GENERATE, body, target)
    assert reply.format == GEMINI_GENERATE
    assert reply.body is body
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 3)
    counted = translator.native_response(GEMINI_COUNT_TOKENS, b'{"totalTokens": 3}', target)
    assert counted.format == GEMINI_COUNT_TOKENS and counted.usage is None
    with pytest.raises(UpstreamProtocolError):
        translator.native_response(GEMINI_GENERATE, b"<html>", target)


# --- stream ------------------------------------------------------------------------------------------


def _event(text: str, finish: str | None = None, output_tokens: int | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 3}
    if output_tokens is not None:
        usage["candidatesTokenCount"] = output_tokens
    return b"data: " + orjson.dumps({"candidates": [candidate], "usageMetadata": usage})


TEXT = _event("Hi")
LAST = _event("!", "STOP", 2)


def test_stream_events_are_forwarded_as_they_complete_and_end_at_close() -> None:
    decoder = GeminiPassthroughDecoder()
    upstream = TEXT + b"\r\n\r\n" + LAST + b"\r\n\r\n"
    items = decoder.feed(upstream[:30]) + decoder.feed(upstream[30:100]) + decoder.feed(upstream[100:])
    assert b"".join(items) == TEXT + b"\n\n" + LAST + b"\n\n"
    assert decoder.format == GEMINI_GENERATE
    assert not decoder.done  # Gemini has no end marker: only the close says it is over
    assert decoder.finish() == []
    assert decoder.done
    assert decoder.usage is not None and decoder.usage.completion_tokens == 2


def test_stream_closed_before_a_finish_reason_is_not_done() -> None:
    decoder = GeminiPassthroughDecoder()
    assert decoder.feed(TEXT + b"\n\n") == [TEXT + b"\n\n"]
    assert decoder.finish() == []
    assert not decoder.done and not decoder.failed


def test_blocked_prompt_ends_normally() -> None:
    decoder = GeminiPassthroughDecoder()
    decoder.feed(b'data: {"promptFeedback":{"blockReason":"SAFETY"}}\n\n')
    decoder.finish()
    assert decoder.done


@pytest.mark.parametrize("event", [b"data: not json", b"data: [1, 2]", b"data: {truncated"])
def test_garbage_is_an_error_not_an_item(event: bytes) -> None:
    decoder = GeminiPassthroughDecoder()
    assert decoder.feed(TEXT + b"\n\n" + event + b"\n\n" + LAST + b"\n\n") == []
    assert decoder.failed and decoder.error is not None
    assert decoder.error.code == "bad_upstream_response"


def test_error_events_become_the_error_and_are_not_forwarded() -> None:
    decoder = GeminiPassthroughDecoder()
    error = (
        b'data: {"error":{"code":429,"message":"quota for key k-secret","status":"RESOURCE_EXHAUSTED"}}\n\n'
    )
    assert decoder.feed(error) == []
    assert decoder.failed and decoder.error is not None
    assert (decoder.error.status, decoder.error.code, decoder.error.trigger) == (
        429,
        "RESOURCE_EXHAUSTED",
        "rate_limited",
    )
    bare = GeminiPassthroughDecoder()
    bare.feed(b'{"error":{"code":500,"message":"x","status":"INTERNAL"}}')
    assert bare.finish() == [] and bare.failed


def test_content_events_between_others_pass_unparsed_and_usage_is_the_last_reads() -> None:
    """Several events in one read: the plain ones before the last are forwarded by framing, yet the
    usage is the last event's and a finish reason in the middle of a read is still seen."""
    decoder = GeminiPassthroughDecoder()
    assert decoder.feed(TEXT + b"\r\n\r\n") == [TEXT + b"\n\n"]
    then = _event(" there", None, 3)
    block = TEXT + b"\n\n" + TEXT + b"\n\n" + LAST + b"\n\n" + then + b"\n\n"
    assert decoder.feed(block) == [block]
    assert decoder.usage is not None and decoder.usage.completion_tokens == 3  # read from the last
    assert decoder.finish() == [] and decoder.done  # LAST's finish reason was read mid-read


def test_an_error_in_the_middle_of_a_read_stops_the_stream_there() -> None:
    decoder = GeminiPassthroughDecoder()
    decoder.feed(TEXT + b"\n\n")
    error = b'data: {"error":{"code":500,"message":"boom","status":"INTERNAL"}}'
    assert decoder.feed(TEXT + b"\n\n" + error + b"\n\n" + TEXT + b"\n\n") == []
    assert decoder.failed and decoder.error is not None
