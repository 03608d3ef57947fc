"""OpenAI's pass-through of Responses and legacy Completions bodies: requests, answers, stream decoders."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.core.formats import OPENAI_COMPLETIONS, OPENAI_RESPONSES
from asbru_gateway.errors import InvalidRequestError, UpstreamProtocolError
from asbru_gateway.providers.base import NativeTranslator, Target
from asbru_gateway.providers.openai.native import (
    CompletionsStreamDecoder,
    OpenAINativeTranslator,
    ResponsesStreamDecoder,
)
from asbru_gateway.providers.registry import provider_type

CONFIG = ProviderConfig(name="openai", type="openai", keys=[])
TARGET = Target("https://api.example/v1", "gpt-upstream", "sk-1", CONFIG)
TOOL: Any = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def test_only_the_openai_type_passes_these_formats_through() -> None:
    openai = provider_type("openai").make_translator(CONFIG)
    assert isinstance(openai, NativeTranslator)
    assert openai.native_formats == {OPENAI_RESPONSES, OPENAI_COMPLETIONS}
    for other in ("groq", "vllm", "echo", "azure"):
        translator = provider_type(other).make_translator(ProviderConfig(name=other, type=other, keys=[]))
        assert not isinstance(translator, NativeTranslator) or not translator.native_formats, other


def test_a_responses_body_goes_out_with_only_the_model_rewritten() -> None:
    body = {"model": "openai/gpt", "input": "hi", "previous_response_id": "resp_1", "future_field": {"x": 1}}
    request = OpenAINativeTranslator().native_request(
        OPENAI_RESPONSES, body, TARGET, stream=False, extra_tools=[]
    )
    assert request.url == "https://api.example/v1/responses"
    assert orjson.loads(request.body) == {**body, "model": "gpt-upstream"}
    assert request.headers["authorization"] == "Bearer sk-1"
    assert body["model"] == "openai/gpt"  # the client's body is not mutated (a fallback reuses it)


def test_plugin_tools_are_added_in_the_responses_shape() -> None:
    body = {"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}
    request = OpenAINativeTranslator().native_request(
        OPENAI_RESPONSES, body, TARGET, stream=True, extra_tools=[TOOL]
    )
    sent = orjson.loads(request.body)
    assert sent["tools"] == [
        {"type": "web_search"},
        {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
    ]
    assert sent["stream"] is True


def test_a_completions_stream_asks_for_usage_and_takes_no_tools() -> None:
    translator = OpenAINativeTranslator()
    body = {"model": "m", "prompt": "hi", "stream": True}
    request = translator.native_request(OPENAI_COMPLETIONS, body, TARGET, stream=True, extra_tools=[])
    assert request.url.endswith("/completions")
    assert orjson.loads(request.body)["stream_options"] == {"include_usage": True}
    with pytest.raises(InvalidRequestError) as raised:
        translator.native_request(OPENAI_COMPLETIONS, body, TARGET, stream=False, extra_tools=[TOOL])
    assert raised.value.param == "tools"


def test_native_answers_keep_their_bytes_and_report_usage() -> None:
    translator = OpenAINativeTranslator()
    response = b'{"object":"response","usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}'
    reply = translator.native_response(OPENAI_RESPONSES, response, TARGET)
    assert (reply.body, reply.format) == (response, OPENAI_RESPONSES)
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 4)
    completion = b'{"object":"text_completion","usage":{"prompt_tokens":2,"completion_tokens":5}}'
    usage = translator.native_response(OPENAI_COMPLETIONS, completion, TARGET).usage
    assert usage is not None and usage.completion_tokens == 5
    with pytest.raises(UpstreamProtocolError):
        translator.native_response(OPENAI_RESPONSES, b"<html>", TARGET)


def event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


CREATED = event("response.created", response={"id": "resp_1"})
DELTA = event("response.output_text.delta", delta="Hi")
COMPLETED = event(
    "response.completed", response={"id": "resp_1", "usage": {"input_tokens": 3, "output_tokens": 2}}
)


def test_responses_events_are_forwarded_checked_and_end_at_completed() -> None:
    decoder = ResponsesStreamDecoder()
    assert decoder.feed(CREATED + DELTA + b": keep-alive\n\n") == [CREATED + DELTA]
    assert not decoder.done
    assert decoder.feed(COMPLETED) == [COMPLETED]
    assert decoder.done and decoder.usage is not None and decoder.usage.total_tokens == 5


def test_responses_events_split_anywhere_give_the_same_bytes() -> None:
    stream = (CREATED + DELTA + COMPLETED).replace(b"\n", b"\r\n")
    decoder = ResponsesStreamDecoder()
    out = b"".join(b"".join(decoder.feed(stream[i : i + 3])) for i in range(0, len(stream), 3))
    assert out + b"".join(decoder.finish()) == CREATED + DELTA + COMPLETED
    assert decoder.done


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (event("response.failed", response={"error": {"code": "server_error", "message": "boom"}}), 502),
        (event("error", code="rate_limit_exceeded", message="boom", param=None), 429),
        (event("error", error={"type": "invalid_request_error", "message": "boom"}), 502),
    ],
)
def test_responses_error_events_are_errors_not_items(failure: bytes, status: int) -> None:
    decoder = ResponsesStreamDecoder()
    assert decoder.feed(CREATED + failure + DELTA) == [CREATED]
    assert decoder.failed and decoder.error is not None
    assert (decoder.error.message, decoder.error.status) == ("boom", status)


def test_garbage_in_a_responses_stream_is_an_error() -> None:
    decoder = ResponsesStreamDecoder()
    assert decoder.feed(b"event: x\ndata: {not json\n\n") == []
    assert decoder.failed and isinstance(decoder.error, UpstreamProtocolError)


def test_completions_chunks_are_forwarded_and_the_usage_chunk_we_asked_for_hidden() -> None:
    text = b'data: {"object":"text_completion","choices":[{"text":"Hi","index":0}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1}}\n\n'
    done = b"data: [DONE]\n\n"
    hiding = CompletionsStreamDecoder(hide_usage_chunk=True)
    assert hiding.feed(text + usage + done) == [text + done]
    assert hiding.done and hiding.usage is not None and hiding.usage.completion_tokens == 1
    showing = CompletionsStreamDecoder(hide_usage_chunk=False)
    assert showing.feed(text + usage + done) == [text + usage + done]


def test_a_completions_error_chunk_is_an_error() -> None:
    decoder = CompletionsStreamDecoder(hide_usage_chunk=False)
    error = b'data: {"error":{"message":"boom","type":"server_error"}}\n\n'
    assert decoder.feed(error) == []
    assert decoder.failed and decoder.error is not None and decoder.error.message == "boom"
