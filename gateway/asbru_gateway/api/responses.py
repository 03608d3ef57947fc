"""Sending responses: JSON bodies, OpenAI-format errors, and the headers every response carries."""

from __future__ import annotations

import math

import orjson

from asbru_gateway.api.types import Headers, Send
from asbru_gateway.core.bulk import SLICE_BYTES, bulk_lane
from asbru_gateway.errors import GatewayError

JSON = b"application/json"
SSE_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
"""Headers every streamed response carries, whatever its dialect (no proxy may buffer it)."""


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    request_id: bytes,
    *,
    content_type: bytes = JSON,
    headers: Headers | None = None,
) -> None:
    response_headers: Headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id),
    ]
    if headers:
        response_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    if len(body) <= SLICE_BYTES:
        await send({"type": "http.response.body", "body": body})
        return
    view = memoryview(body)
    lane = bulk_lane()  # a large body takes turns with the other large transfers (core.bulk)
    for start in range(0, len(body), SLICE_BYTES):
        end = start + SLICE_BYTES
        await lane.turn()
        await send({"type": "http.response.body", "body": view[start:end], "more_body": end < len(body)})


async def send_json(send: Send, status: int, data: object, request_id: bytes) -> None:
    await send_body(send, status, orjson.dumps(data), request_id)


async def send_error(send: Send, error: GatewayError, request_id: bytes) -> None:
    await send_body(send, error.status, error.to_body(), request_id, headers=error_headers(error))


def error_headers(error: GatewayError) -> Headers:
    """``Retry-After`` (whole seconds, at least 1) when the error says when to come back."""
    if error.retry_after is None:
        return []
    return [(b"retry-after", str(max(1, math.ceil(error.retry_after))).encode())]
