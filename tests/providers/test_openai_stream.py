"""The OpenAI pass-through stream decoder: forwarded as-is when it can be, parsed when it must."""

from __future__ import annotations

import orjson
import pytest

from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.base import core_chunks
from asbru_gateway.errors import UpstreamProtocolError
from asbru_gateway.providers.openai.translator import OpenAIStreamDecoder, usage_of

DELTA = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_plain_deltas_pass_through_as_one_block() -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(DELTA + DELTA) == [DELTA + DELTA]
    assert not decoder.done


def test_block_splits_into_core_chunks_for_chunk_hooks_and_other_dialects() -> None:
    chunk = orjson.loads(DELTA.removeprefix(b"data: "))
    assert core_chunks([DELTA + DELTA, DONE]) == [chunk, chunk]


def test_usage_and_done_are_read_even_inside_a_block() -> None:
    decoder = OpenAIStreamDecoder(hide_usage_chunk=True)
    out = decoder.feed(DELTA + USAGE + DONE)
    assert out == [DELTA, DONE]  # the usage chunk the client did not ask for is dropped
    assert decoder.done
    assert decoder.usage is not None and decoder.usage.completion_tokens == 4


def test_split_anywhere_gives_the_same_events() -> None:
    stream = DELTA + DELTA + USAGE + DONE
    whole = OpenAIStreamDecoder()
    expected = b"".join(whole.feed(stream) + whole.finish())
    piecewise = OpenAIStreamDecoder()
    out = b"".join(b"".join(piecewise.feed(stream[i : i + 1])) for i in range(len(stream)))
    assert out + b"".join(piecewise.finish()) == expected
    assert piecewise.done and whole.done


def test_error_event_ends_the_stream_as_an_error_not_an_item() -> None:
    decoder = OpenAIStreamDecoder()
    error = b"data: " + orjson.dumps({"error": {"message": "boom", "type": "server_error"}}) + b"\n\n"
    assert decoder.feed(DELTA + error + DELTA) == [DELTA]
    assert decoder.failed
    assert decoder.error is not None
    assert (decoder.error.message, decoder.error.type) == ("boom", "server_error")


def test_a_whole_answer_in_one_read_passes_through_and_ends_the_stream() -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(DELTA + DELTA + DONE) == [DELTA + DELTA + DONE]
    assert decoder.done


def test_usage_of_a_large_body_is_read_from_its_tail_without_parsing_it_whole() -> None:
    content = "x" * (2 * 1024 * 1024)
    body = orjson.dumps(
        {
            "id": "chatcmpl-big",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {
                "prompt_tokens": 5,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 1},
            },
            "system_fingerprint": "fp",
        }
    )
    assert usage_of(body) == Usage(5, 7)
    assert usage_of(body.replace(b'"usage"', b'"other"')) is None
    with pytest.raises(UpstreamProtocolError):
        usage_of(b"<html>" + body[:-1])


def test_a_small_body_is_still_parsed_whole() -> None:
    with pytest.raises(UpstreamProtocolError):
        usage_of(b'{"id": "x", "choices": [')
