"""One LLM request over HTTP: read it, let its dialect parse it, run the engine, render the answer.

The order, and why: the body is read within its limit (413 before anything else); the dialect
turns it into a typed request (400s in the caller's own error shape); the engine runs plugins,
routing and pools against the snapshot current at arrival; the outcome is rendered by the same
dialect, a stream event by event as it arrives (``relay``). Only after the response's last byte
are the completion hooks run (metrics, logs, cost): in this task, so no client waits for them and
no task is created per request. An unexpected exception is a 500 whose details stay in the log.
"""

from __future__ import annotations

import asyncio
import logging

from asbru_gateway.api import disconnect
from asbru_gateway.api.relay import SHUTTING_DOWN, relay
from asbru_gateway.api.request_body import read_body
from asbru_gateway.api.responses import error_headers, send_body
from asbru_gateway.api.types import Headers, Receive, Scope, Send
from asbru_gateway.core.bulk import SLICE_BYTES, bulk_lane
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.dialects.base import Dialect, Incoming
from asbru_gateway.dialects.registry import Mount
from asbru_gateway.errors import GatewayError
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.runtime import engine
from asbru_gateway.runtime.gateway import Gateway, Snapshot

log = logging.getLogger(__name__)

INTERNAL = GatewayError("internal error in the gateway; see its log for the request id")
NOT_READY = GatewayError(
    "gateway has no config applied yet", status=503, type="server_error", code="not_ready", retry_after=1
)
_FAILED = Outcome(500, error=INTERNAL)
CLIENT_GONE = GatewayError(
    "client closed the request", status=499, type="invalid_request_error", code="client_closed_request"
)


async def serve(
    gateway: Gateway,
    mount: Mount,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    request_id: bytes,
    path_model: str | None,
) -> None:
    dialect = mount.dialect
    snapshot = gateway.current
    if snapshot is None:
        await send_error(send, dialect, NOT_READY, request_id)
        return
    try:
        body = await read_body(scope, receive, snapshot.config.server.max_body_bytes)
        request = dialect.parse(
            Incoming(
                request_id.decode(),
                mount.endpoint,
                body,
                scope["headers"],
                scope.get("query_string", b""),
                path_model,
                mount.family,
            )
        )
    except GatewayError as error:
        await send_error(send, dialect, error, request_id)
        return
    snapshot.active += 1
    outcome, reached = _FAILED, 0
    try:
        outcome, reached = await _answer(snapshot, dialect, request, scope, (send, request_id))
    except Exception:
        log.exception("request %s failed unexpectedly", request.request_id)
        if not request.response_started:
            await send_error(send, dialect, INTERNAL, request_id)
    finally:
        pipeline = snapshot.pipeline
        try:
            if pipeline.has_complete_hooks:  # after the last byte: see the module docstring
                await pipeline.complete(request, outcome, reached)
        finally:
            snapshot.leave()


async def _answer(
    snapshot: Snapshot,
    dialect: Dialect,
    request: LLMRequest,
    scope: Scope,
    exchange: tuple[Send, bytes],
) -> tuple[Outcome, int]:
    """Engine and rendering: the part a departing client may cut short (then a 499 outcome).

    While it runs, the connection cancels it if the client leaves (``api.disconnect``); that frees
    the pool slot, queue place and upstream connection at once.
    """
    send, request_id = exchange
    handler = asyncio.current_task()
    assert handler is not None
    disconnect.watch(scope, handler)
    reached = 0
    try:
        outcome, reached = await engine.run(snapshot, request)
        if outcome.stream is None:
            if outcome.reply is not None and outcome.reply.body_size() > SLICE_BYTES:
                await bulk_lane().turn()  # a large answer is rendered (copied) in a turn of its own
            status, body, headers = rendered(dialect, request, outcome)
            await send_body(send, status, body, request_id, headers=headers)
        else:
            await relay(
                send,
                dialect,
                request,
                outcome,
                pipeline=snapshot.pipeline,
                request_id=request_id,
                client_gone=lambda: disconnect.departed(scope),
            )
        return outcome, reached
    except asyncio.CancelledError:
        handler.uncancel()
        if disconnect.departed(scope):
            return Outcome(CLIENT_GONE.status, error=CLIENT_GONE), reached
        # The server cancels what is still running when its shutdown drain time is over: answer
        # what can still be answered instead of cutting the connection (and logging a traceback).
        if not request.response_started:
            await send_error(send, dialect, SHUTTING_DOWN, request_id)
        return Outcome(SHUTTING_DOWN.status, error=SHUTTING_DOWN), reached
    finally:
        disconnect.unwatch(scope)


def rendered(dialect: Dialect, request: LLMRequest, outcome: Outcome) -> tuple[int, bytes, Headers]:
    """Status, body and headers of a non-stream outcome, in the client's dialect."""
    request.response_started = True
    headers = served_by(request)
    if outcome.headers:
        headers.extend(outcome.headers)
    if request.response_headers:
        headers.extend(request.response_headers)
    if outcome.error is not None:
        status, body = dialect.error(outcome.error, request.request_id)
        headers.extend(error_headers(outcome.error))
        return status, body, headers
    if outcome.reply is not None:
        return outcome.status, dialect.render(request, outcome.reply), headers
    return outcome.status, b"{}", headers


async def send_error(send: Send, dialect: Dialect, error: GatewayError, request_id: bytes) -> None:
    status, body = dialect.error(error, request_id.decode())
    await send_body(send, status, body, request_id, headers=error_headers(error))


def served_by(request: LLMRequest) -> Headers:
    """Which provider and upstream model served (or last failed) the request, in every dialect.

    The encoded pair is cached per (provider, model): the same few pairs serve most requests.
    """
    provider = request.provider
    if provider is None:
        return []
    key = (provider, request.upstream_model or "")
    cached = _SERVED_BY.get(key)
    if cached is None:
        cached = (
            (b"x-asbru-provider", provider.encode()),
            (b"x-asbru-model", key[1].encode("utf-8", "replace")[:256]),
        )
        if len(_SERVED_BY) < 4096:
            _SERVED_BY[key] = cached
    return list(cached)


_SERVED_BY: dict[tuple[str, str], tuple[tuple[bytes, bytes], tuple[bytes, bytes]]] = {}
