"""Relaying a stream to the client: events as they arrive, never buffered, never ended silently.

The first events were read by routing (so a failure before them could still fall back). From here
on a failure cannot be undone: it becomes an OpenAI error event, and the stream ends. An upstream
that closes without its end marker is such a failure too. A client that goes away stops the relay
and frees the upstream connection and the pool slot (see ``disconnect``: noticed within a second).
"""

from __future__ import annotations

import time

from asbru_gateway.api.responses import error_event
from asbru_gateway.api.types import Send
from asbru_gateway.errors import GatewayError, UpstreamProtocolError
from asbru_gateway.plugins.base import RequestContext
from asbru_gateway.plugins.pipeline import Pipeline
from asbru_gateway.routing.dispatch import StreamStart

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def relay_stream(
    send: Send,
    start: StreamStart,
    ctx: RequestContext,
    *,
    pipeline: Pipeline,
    request_id: bytes,
) -> None:
    """Relay every event; the caller ends the body (after the post-hooks)."""
    ctx.response_started = True
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, (b"x-request-id", request_id)],
            }
        )
        await _send_events(send, start.first_events, ctx, pipeline)
        async for chunk in start.chunks:
            events = start.decoder.feed(chunk)
            if events:
                await _send_events(send, events, ctx, pipeline)
        tail = start.decoder.finish()
        if not start.decoder.done and not start.decoder.failed:
            tail.append(error_event(UpstreamProtocolError("upstream ended the stream before its end")))
        if tail:
            await _send_events(send, tail, ctx, pipeline)
    except GatewayError as error:
        await _send_events(send, [error_event(error)], ctx, pipeline)
    finally:
        start.release()
        ctx.usage = start.decoder.usage


async def _send_events(send: Send, events: list[bytes], ctx: RequestContext, pipeline: Pipeline) -> None:
    """Send what the decoder produced as one write; chunk hooks see one event at a time.

    A pass-through decoder may hand over several events as one block (no split, no join when
    nobody needs them apart); they are split only for chunk hooks, which the contract promises
    single events.
    """
    if pipeline.has_chunk_hooks:
        events = [pipeline.chunk(ctx, event) for event in split_events(events)]
    body = events[0] if len(events) == 1 else b"".join(events)
    now = time.perf_counter()
    if ctx.first_token_at is None:
        ctx.first_token_at = now
    ctx.last_event_at = now
    ctx.events_sent += body.count(b"\n\n")
    await send({"type": "http.response.body", "body": body, "more_body": True})


def split_events(blocks: list[bytes]) -> list[bytes]:
    """Single ``data: ...\\n\\n`` events out of blocks that may each hold several."""
    return [event + b"\n\n" for block in blocks for event in block.split(b"\n\n") if event]
