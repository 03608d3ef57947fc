"""Core chunks out of stream items, for whoever needs dicts where a provider passed bytes through."""

from __future__ import annotations

import orjson

from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.schema import Chunk

STEP_KEY = "mcp_call"
"""An agent-mode tool step in a core stream chunk: ``{"choices": [], "mcp_call": {...}}`` (see
``runtime.agent_stream``), the Responses API's ``mcp_call`` item, which each dialect renders its way."""


def core_chunks(items: list[StreamItem]) -> list[Chunk]:
    """Core chunks out of stream items: dicts as they are, core SSE bytes split and decoded.

    For renderers of other dialects fed by a provider that passes core bytes through (OpenAI and
    compatible), and for chunk hooks. ``[DONE]``, comments and events that are not JSON objects are
    skipped (the decoder already rejected malformed ones).
    """
    chunks: list[Chunk] = []
    for item in items:
        if not isinstance(item, bytes):
            chunks.append(item)
            continue
        for event in item.split(b"\n\n"):
            start = event.find(b"data:")
            if start < 0:
                continue
            payload = event[start + 5 :].strip()
            if not payload or payload == b"[DONE]":
                continue
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict):
                chunks.append(data)  # type: ignore[arg-type]
    return chunks
