"""The Anthropic provider's pass-through (``NativeTranslator``), bytes in / bytes out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.core.formats import ANTHROPIC_COUNT_TOKENS, ANTHROPIC_MESSAGES
from asbru_gateway.errors import UpstreamProtocolError
from asbru_gateway.providers.anthropic.translator import AnthropicTranslator
from asbru_gateway.providers.base import NativeTranslator, Target, Usage
from tests.fakes import scenarios
from tests.fakes.anthropic import message, sse, stream_events

CONFIG = ProviderConfig(name="anthropic", type="anthropic")
TRANSLATOR = AnthropicTranslator(CONFIG)
TARGET = Target(base_url="https://api.anthropic.com/v1", model="claude-up", api_key="sk-up", config=CONFIG)
BODY: dict[str, Any] = {
    "model": "anthropic/claude-client",
    "max_tokens": 100,
    "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hi"}],
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "metadata": {"user_id": "u"},
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
    "tools": [{"name": "a", "input_schema": {"type": "object"}}],
}
EXTRA_TOOL: Any = {
    "type": "function",
    "function": {"name": "mcp_search", "description": "Search", "parameters": {"type": "object"}},
}


def test_is_a_native_translator_for_both_formats() -> None:
    assert isinstance(TRANSLATOR, NativeTranslator)
    assert TRANSLATOR.native_formats == {ANTHROPIC_MESSAGES, ANTHROPIC_COUNT_TOKENS}


def test_request_rewrites_only_the_model() -> None:
    upstream = TRANSLATOR.native_request(ANTHROPIC_MESSAGES, BODY, TARGET, stream=False, extra_tools=[])
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers["x-api-key"] == "sk-up"
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert orjson.loads(upstream.body) == {**BODY, "model": "claude-up"}
    assert BODY["model"] == "anthropic/claude-client", "the client's body is not mutated"


def test_request_sets_the_stream_flag_and_adds_plugin_tools() -> None:
    upstream = TRANSLATOR.native_request(
        ANTHROPIC_MESSAGES, BODY, TARGET, stream=True, extra_tools=[EXTRA_TOOL]
    )
    sent = orjson.loads(upstream.body)
    assert sent["stream"] is True
    assert sent["tools"] == [
        BODY["tools"][0],
        {"name": "mcp_search", "input_schema": {"type": "object"}, "description": "Search"},
    ]
    not_streamed = TRANSLATOR.native_request(
        ANTHROPIC_MESSAGES, {**BODY, "stream": True}, TARGET, stream=False, extra_tools=[]
    )
    assert orjson.loads(not_streamed.body)["stream"] is False


def test_count_tokens_request() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    upstream = TRANSLATOR.native_request(ANTHROPIC_COUNT_TOKENS, body, TARGET, stream=False, extra_tools=[])
    assert upstream.url == "https://api.anthropic.com/v1/messages/count_tokens"
    assert orjson.loads(upstream.body) == {**body, "model": "claude-up"}


def test_response_keeps_the_bytes_and_reads_usage() -> None:
    body = orjson.dumps(
        message("claude-up")
        | {"usage": {"input_tokens": 5, "cache_read_input_tokens": 3, "output_tokens": 2}}
    )
    reply = TRANSLATOR.native_response(ANTHROPIC_MESSAGES, body, TARGET)
    assert reply.body is body
    assert reply.format == ANTHROPIC_MESSAGES
    assert reply.usage == Usage(prompt_tokens=8, completion_tokens=2)
    count = TRANSLATOR.native_response(ANTHROPIC_COUNT_TOKENS, b'{"input_tokens": 12}', TARGET)
    assert (count.body, count.format, count.usage) == (b'{"input_tokens": 12}', ANTHROPIC_COUNT_TOKENS, None)


@pytest.mark.parametrize(
    ("format", "body"),
    [
        (ANTHROPIC_MESSAGES, b"not json"),
        (ANTHROPIC_MESSAGES, b"[]"),
        (ANTHROPIC_MESSAGES, b'{"type": "completion", "content": []}'),
        (ANTHROPIC_MESSAGES, b'{"type": "message"}'),
        (ANTHROPIC_COUNT_TOKENS, b'{"tokens": 3}'),
        (ANTHROPIC_COUNT_TOKENS, b'{"input_tokens": "3"}'),
    ],
)
def test_response_that_is_not_what_it_should_be(format: str, body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        TRANSLATOR.native_response(format, body, TARGET)


# --- stream ---------------------------------------------------------------------------------------


def decoder() -> Any:
    return TRANSLATOR.native_stream_decoder(ANTHROPIC_MESSAGES, BODY, TARGET)


@pytest.mark.parametrize("model", ["model-text", "model-tool"])
def test_stream_forwards_every_event_unchanged_however_it_is_split(model: str) -> None:
    wire = b"".join(sse(name, data) for name, data in stream_events(model))
    for size in (1, 7, 64, len(wire)):
        stream = decoder()
        assert stream.format == ANTHROPIC_MESSAGES
        out = b""
        for start in range(0, len(wire), size):
            items = stream.feed(wire[start : start + size])
            assert all(isinstance(item, bytes) for item in items)
            out += b"".join(items)
        out += b"".join(stream.finish())
        assert out == wire
        assert stream.done and not stream.failed and stream.error is None
        assert stream.usage == Usage(scenarios.PROMPT_TOKENS, scenarios.COMPLETION_TOKENS)


def test_stream_error_event_becomes_an_error_not_an_item() -> None:
    wire = b"".join(sse(name, data) for name, data in stream_events("midstream-error"))
    stream = decoder()
    items = stream.feed(wire)
    forwarded = b"".join(items)
    assert b"event: error" not in forwarded and b"content_block_delta" in forwarded
    assert stream.failed and not stream.done
    assert stream.error is not None
    assert (stream.error.status, stream.error.code, stream.error.message) == (
        502,
        "overloaded_error",
        scenarios.ERROR_MESSAGE,
    )
    assert stream.feed(sse("message_stop", {"type": "message_stop"})) == []


@pytest.mark.parametrize(
    "event",
    [b"event: content_block_delta\ndata: {not json\n\n", b"data: [1]\n\n", b'data: {"no": "type"}\n\n'],
)
def test_stream_garbage_is_an_error(event: bytes) -> None:
    stream = decoder()
    assert stream.feed(event) == []
    assert stream.failed and isinstance(stream.error, UpstreamProtocolError)


def test_stream_reframes_data_only_events_and_skips_comments() -> None:
    stream = decoder()
    out = stream.feed(
        b': keep-alive\n\ndata: {"type":"ping"}\n\n: note\nevent: ping\ndata: {"type":"ping"}\n\n'
    )
    assert out == [b'event: ping\ndata: {"type":"ping"}\n\nevent: ping\ndata: {"type":"ping"}\n\n']


def test_stream_event_without_a_final_blank_line_at_eof() -> None:
    stream = decoder()
    assert stream.feed(b'event: message_stop\ndata: {"type":"message_stop"}') == []
    assert stream.finish() == [b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    assert stream.done


@pytest.mark.parametrize(
    "event",
    [
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0\n\n',  # cut short
        b"event: content_block_delta\ndata: <html>\n\n",
        b'event: content_block_delta\ndata: {"type":"content_block_delta"}\nid: 7\ndata: x\n\n',
    ],
)
def test_content_events_after_the_first_are_still_checked_by_their_framing(event: bytes) -> None:
    """Content events after the first are not parsed (their framing is checked instead: ~1 k
    instructions instead of ~12 k), so one that is not a single ``data: {...}`` line is parsed, and
    garbage still fails the stream instead of reaching the client."""
    stream = decoder()
    start = sse(*next(iter(stream_events("model-text"))))
    assert stream.feed(start) == [start]
    assert stream.feed(event) == []
    assert stream.failed and isinstance(stream.error, UpstreamProtocolError)
