"""The OpenAI pass-through stream decoder: forwarded as-is when it can be, parsed when it must."""

from __future__ import annotations

import orjson

from asbru_gateway.dialects.base import core_chunks
from asbru_gateway.providers.openai.translator import OpenAIStreamDecoder

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
