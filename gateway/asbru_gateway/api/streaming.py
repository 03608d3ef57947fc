"""Relaying a stream to the client: events as they arrive, never buffered, never ended silently.

The first events were read by routing (so a failure before them could still fall back). From here
on a failure cannot be undone: it becomes an OpenAI error event, and the stream ends. An upstream
that closes without its end marker is such a failure too. A client that goes away stops the relay
and frees the upstream connection and the pool slot at once.
"""

from __future__ import annotations

import asyncio

from asbru_gateway.api.responses import error_event
from asbru_gateway.api.types import Receive, Send
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
    receive: Receive,
    start: StreamStart,
    ctx: RequestContext,
    *,
    pipeline: Pipeline,
    request_id: bytes,
) -> None:
    disconnect = asyncio.ensure_future(_wait_disconnect(receive))
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
            if disconnect.done():
                return
        tail = start.decoder.finish()
        if not start.decoder.done and not start.decoder.failed:
            tail.append(error_event(UpstreamProtocolError("upstream ended the stream before its end")))
        if tail:
            await _send_events(send, tail, ctx, pipeline)
    except GatewayError as error:
        await _send_events(send, [error_event(error)], ctx, pipeline)
    finally:
        disconnect.cancel()
        start.release()
        ctx.usage = start.decoder.usage
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_events(send: Send, events: list[bytes], ctx: RequestContext, pipeline: Pipeline) -> None:
    if pipeline.has_chunk_hooks:
        events = [pipeline.chunk(ctx, event) for event in events]
    body = events[0] if len(events) == 1 else b"".join(events)
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
