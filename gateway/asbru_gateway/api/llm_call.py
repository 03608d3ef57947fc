"""``POST /v1/chat/completions`` and ``POST /v1/embeddings``: body -> plugins -> routing -> client.

The request path, in order: read and check the body (413/400), take the current snapshot once,
run pre-hooks (which may answer instead), plan the candidates (404 for an unknown model), dispatch
(retries, fallbacks), answer (JSON, or an SSE relay), run post-hooks. Every error is an OpenAI
error body with the right status; an unexpected exception is a 500 whose details stay in the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asbru_gateway.api.disconnect import DisconnectSweeper
from asbru_gateway.api.request_body import parse_object, read_body, require_model, require_stream_flag
from asbru_gateway.api.responses import error_headers, send_body, send_error
from asbru_gateway.api.streaming import relay_stream
from asbru_gateway.api.types import Receive, Scope, Send
from asbru_gateway.errors import GatewayError, InvalidRequestError
from asbru_gateway.plugins.base import Outcome, RequestContext
from asbru_gateway.runtime import Gateway, Snapshot

log = logging.getLogger(__name__)

INTERNAL = GatewayError("internal error in the gateway; see its log for the request id")
NOT_READY = GatewayError(
    "gateway has no config applied yet", status=503, type="server_error", code="not_ready", retry_after=1
)


async def serve_call(
    gateway: Gateway,
    endpoint: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    request_id: bytes,
    disconnects: DisconnectSweeper,
) -> None:
    snapshot = gateway.current
    if snapshot is None:
        await send_error(send, NOT_READY, request_id)
        return
    try:
        body = await read_body(scope, receive, snapshot.config.server.max_body_bytes)
        request = parse_object(body)
        require_model(request)
        stream = _check(endpoint, request)
    except GatewayError as error:
        await send_error(send, error, request_id)
        return
    fallbacks = request.pop("fallbacks", None)
    ctx = RequestContext(request_id=request_id.decode(), endpoint=endpoint, body=request, stream=stream)
    try:
        await _run(
            gateway,
            snapshot,
            ctx,
            fallbacks=fallbacks,
            exchange=(receive, send, request_id),
            disconnects=disconnects,
        )
    except Exception:
        log.exception("request %s failed unexpectedly", ctx.request_id)
        if ctx.response_started:
            raise
        await send_error(send, INTERNAL, request_id)


async def _run(
    gateway: Gateway,
    snapshot: Snapshot,
    ctx: RequestContext,
    *,
    fallbacks: Any,
    exchange: tuple[Receive, Send, bytes],
    disconnects: DisconnectSweeper,
) -> None:
    send, request_id = exchange[1], exchange[2]
    pipeline = snapshot.pipeline
    # Skipping an empty pre stage saves a coroutine per request; the reached count is the same.
    reached, short_circuit = await pipeline.pre(ctx) if pipeline.has_pre_hooks else (pipeline.size, None)
    if short_circuit is not None:
        outcome = short_circuit.outcome
    else:
        outcome = await _dispatch(
            gateway, snapshot, ctx, fallbacks, exchange=exchange, disconnects=disconnects
        )
    outcome = await pipeline.post(ctx, outcome, reached)
    if ctx.stream and ctx.response_started:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    ctx.response_started = True
    if outcome.error is not None:
        await send_body(
            send,
            outcome.status,
            outcome.error.to_body(),
            request_id,
            headers=[*error_headers(outcome.error), *outcome.headers],
        )
    else:
        await send_body(send, outcome.status, outcome.body, request_id, headers=outcome.headers)


async def _dispatch(
    gateway: Gateway,
    snapshot: Snapshot,
    ctx: RequestContext,
    fallbacks: Any,
    *,
    exchange: tuple[Receive, Send, bytes],
    disconnects: DisconnectSweeper,
) -> Outcome:
    """Routing and, for a stream, the relay: the part a departing client may cut short (a 499).

    While it runs, the handler is known to the disconnect sweeper, which cancels it if the client
    leaves; that frees the pool slot, queue place and upstream connection at once.
    """
    receive, send, request_id = exchange
    handler = asyncio.current_task()
    assert handler is not None
    sweeper = disconnects
    sweeper.track(handler, receive)
    try:
        plan = snapshot.routes.plan(require_model(ctx.body), fallbacks)
        dispatcher = gateway.dispatcher
        if ctx.endpoint == "embeddings":
            result = await dispatcher.embeddings(ctx, plan)
        elif ctx.stream:
            start = await dispatcher.chat_stream(ctx, plan)
            await relay_stream(send, start, ctx, pipeline=snapshot.pipeline, request_id=request_id)
            return Outcome(200)
        else:
            result = await dispatcher.chat(ctx, plan)
        ctx.usage = result.usage
        return Outcome(200, result.body)
    except GatewayError as error:
        return Outcome(error.status, error=error)
    except asyncio.CancelledError:
        if not sweeper.departed(handler):
            raise  # we are being cancelled ourselves (shutdown): not a client disconnect
        handler.uncancel()
        gone = GatewayError(
            "client closed the request",
            status=499,
            type="invalid_request_error",
            code="client_closed_request",
        )
        return Outcome(gone.status, error=gone)
    finally:
        sweeper.untrack(handler)


def _check(endpoint: str, request: dict[str, Any]) -> bool:
    """Endpoint-specific shape checks; returns the stream flag (embeddings never stream)."""
    if endpoint == "embeddings":
        if request.get("input") in (None, "", []):
            raise InvalidRequestError("you must provide an input parameter", param="input")
        return False
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages must be a non-empty array", param="messages")
    if not all(isinstance(message, dict) for message in messages):
        raise InvalidRequestError("each message must be an object", param="messages")
    return require_stream_flag(request)
