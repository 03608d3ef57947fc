"""Relaying a stream to the client: rendered in its dialect as it arrives, never buffered, never
ended silently.

The first items were read by routing (so a failure before them could still fall back). From here
on a failure cannot be undone: it becomes the dialect's error event, and the stream ends. An
upstream that closes without its end marker is such a failure too. A client that goes away stops
the relay and frees the upstream connection and the pool slot (``disconnect``: within a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from asbru_gateway.api.responses import SSE_HEADERS
from asbru_gateway.api.types import Send
from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.dialects.base import Dialect, StreamRenderer, core_chunks
from asbru_gateway.errors import GatewayError
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.plugins.pipeline import Pipeline


async def relay(
    send: Send,
    dialect: Dialect,
    request: LLMRequest,
    outcome: Outcome,
    *,
    pipeline: Pipeline,
    request_id: bytes,
    client_gone: Callable[[], bool],
) -> None:
    """Send every item, then the dialect's end (or error) event, ending the response.

    A cancellation that is not the client leaving is the server's shutdown running out of drain
    time: the stream then ends with the dialect's error event (``shutting_down``), not a cut.
    """
    stream = outcome.stream
    assert stream is not None
    renderer = dialect.stream(request)
    hooks = pipeline if pipeline.has_chunk_hooks else None
    request.response_started = True
    headers = [(b"content-type", dialect.stream_content_type), *SSE_HEADERS, (b"x-request-id", request_id)]
    if request.provider is not None:
        headers.append((b"x-asbru-provider", request.provider.encode()))
    headers.extend(outcome.headers)
    if request.response_headers:
        headers.extend(request.response_headers)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await _send_items(send, renderer, stream.first, request, hooks)
        async for items in stream:
            await _send_items(send, renderer, items, request, hooks)
        error = stream.error
        tail = renderer.end(stream.usage) if error is None else renderer.error(error)
    except GatewayError as error:
        tail = renderer.error(error)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if client_gone() or task is None:
            raise
        task.uncancel()
        tail = renderer.error(SHUTTING_DOWN)
    finally:
        stream.release()
        request.usage = stream.usage
    await send({"type": "http.response.body", "body": tail, "more_body": False})


SHUTTING_DOWN = GatewayError(
    "the gateway is shutting down and its drain time ran out; retry the request",
    status=503,
    type="server_error",
    code="shutting_down",
    retry_after=1,
)


async def _send_items(
    send: Send, renderer: StreamRenderer, items: list[StreamItem], request: LLMRequest, hooks: Pipeline | None
) -> None:
    if hooks is not None:
        items = [hooks.chunk(request, chunk) for chunk in core_chunks(items)]
    body = renderer.items(items)
    if not body:
        return
    now = time.perf_counter()
    if request.first_token_at is None:
        request.first_token_at = now
    request.last_event_at = now
    request.events_sent += body.count(b"\n\n")
    await send({"type": "http.response.body", "body": body, "more_body": True})
