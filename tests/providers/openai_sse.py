"""A translating decoder's items as the OpenAI SSE events a client would see, for the decoder tests.

A ``CORE`` decoder returns core chunk dicts, sets ``done`` at a normal end and ``error`` (with
``failed``) on an upstream error; the relay's OpenAI renderer then writes one ``data:`` event per
chunk, ``data: [DONE]`` after a normal end and a ``data: {"error": ...}`` event after an error.
This helper does the same by hand, so the decoder tests can keep asserting the events' content and
order without depending on the dialect layer.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.formats import CORE
from asbru_gateway.providers.base import StreamDecoder

DONE_EVENT = b"data: [DONE]\n\n"


def openai_events(decoder: StreamDecoder, items: list[Any]) -> list[bytes]:
    """One ``data:`` event per item, then ``[DONE]`` if the decoder is done or the error event if it failed.

    Call it once the decoder has been fed and finished: the end marker reflects its final state. It
    also checks the contract a translating decoder keeps: core chunk dicts only (no raw SSE bytes),
    and never both done and failed.
    """
    assert decoder.format == CORE
    assert all(isinstance(item, dict) for item in items), "a translating decoder returns core chunks only"
    assert not (decoder.done and decoder.failed)
    events = [b"data: " + orjson.dumps(item) + b"\n\n" for item in items]
    if decoder.done:
        events.append(DONE_EVENT)
    elif decoder.failed:
        assert decoder.error is not None, "a failed decoder says why"
        events.append(b"data: " + decoder.error.to_body() + b"\n\n")
    else:
        assert decoder.error is None
    return events
