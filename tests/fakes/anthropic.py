"""A fake Anthropic Messages API: ``POST /v1/messages`` and ``/v1/messages/count_tokens`` (which answers
``scenarios.PROMPT_TOKENS``), playing the shared scenarios (``scenarios.py``).

It speaks Anthropic's documented wire format (checked against the official ``anthropic`` SDK in
``tests/providers/test_anthropic_translator.py``): JSON ``message`` objects, ``{"type": "error", ...}``
error bodies and, for ``"stream": true``, named SSE events (``message_start``, ``content_block_*``,
``ping``, ``message_delta``, ``message_stop``) written in several pieces, some split mid-event.

Like the real API it refuses requests without a key (``x-api-key``, or ``Authorization: Bearer``
as the ``anthropic`` SDK 2.x sends it) or without ``anthropic-version`` (401
``authentication_error``), and without ``max_tokens`` (400 ``invalid_request_error``).

Paths: the fake serves ``/v1/messages``, so the gateway's provider ``base_url`` is ``f"{url}/v1"``
(``provider_config`` does that) while the ``anthropic`` SDK takes ``base_url=url``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import scenarios
from tests.fakes.server import Recorder

MESSAGE_ID = "msg_fake_0001"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_HANG = web.AppKey("hang", asyncio.Event)


def make_app(recorder: Recorder) -> web.Application:
    """The fake upstream; every request it receives is appended to ``recorder``."""
    app = web.Application()
    app[_HANG] = asyncio.Event()

    async def release_hangs(app: web.Application) -> None:
        app[_HANG].set()

    async def messages(request: web.Request) -> web.StreamResponse:
        recorded = await recorder.record(request)
        body = recorded.json
        refusal = _refusal(request, body)
        if refusal is not None:
            return refusal
        if not isinstance(body.get("max_tokens"), int):
            return error_response(400, "max_tokens: Field required")
        model = body["model"]
        if model == "hang":
            await request.app[_HANG].wait()  # set when the fake shuts down
            return error_response(503, "fake upstream shut down")
        if body.get("stream"):
            return await stream(request, model)
        return web.json_response(message(model), dumps=_dumps)

    async def count_tokens(request: web.Request) -> web.Response:
        recorded = await recorder.record(request)
        refusal = _refusal(request, recorded.json)
        if refusal is not None:
            return refusal
        return web.json_response({"input_tokens": scenarios.PROMPT_TOKENS}, dumps=_dumps)

    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.on_shutdown.append(release_hangs)
    return app


def provider_config(url: str, name: str = "anthropic") -> dict[str, Any]:
    """A provider entry of a gateway config pointing at this fake (key from ASBRU_TEST_ANTHROPIC_KEY)."""
    return {
        "name": name,
        "type": "anthropic",
        "base_url": f"{url}/v1",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_ANTHROPIC_KEY"}],
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}


def error_response(status: int, message: str) -> web.Response:
    headers = {"request-id": "req_fake"}
    if status == 429:
        headers["retry-after"] = "0"
    return web.json_response(error_body(status, message), status=status, headers=headers, dumps=_dumps)


def message(model: str) -> dict[str, Any]:
    """The non-streaming answer of the scenario ``model`` selects."""
    if scenarios.wants_tool(model):
        content: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": scenarios.TOOL_CALL_ID,
                "name": scenarios.TOOL_NAME,
                "input": orjson.loads(scenarios.TOOL_ARGS),
            }
        ]
        stop_reason = "tool_use"
    else:
        content = [{"type": "text", "text": scenarios.TEXT}]
        stop_reason = "end_turn"
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(scenarios.COMPLETION_TOKENS),
    }


def stream_events(model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The streamed answer of the scenario ``model`` selects, as (event name, data) pairs.

    A model containing ``midstream-error`` sends the start of a text answer, then an ``error``
    event (``overloaded_error``), as the real API does when it is overloaded mid-answer.
    """
    start = message(model) | {"content": [], "stop_reason": None, "usage": _usage(1)}
    yield "message_start", {"type": "message_start", "message": start}
    if "midstream-error" in model:
        block = {"type": "text", "text": ""}
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
        delta = {"type": "text_delta", "text": scenarios.STREAM_PIECES[0]}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        yield "error", error_body(529, scenarios.ERROR_MESSAGE)
        return
    if scenarios.wants_tool(model):
        block = {"type": "tool_use", "id": scenarios.TOOL_CALL_ID, "name": scenarios.TOOL_NAME, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in scenarios.TOOL_ARG_PIECES]
        stop_reason = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in scenarios.STREAM_PIECES]
        stop_reason = "end_turn"
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    yield "ping", {"type": "ping"}
    for delta in deltas:
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": scenarios.COMPLETION_TOKENS},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def stream(request: web.Request, model: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"content-type": "text/event-stream; charset=utf-8", "request-id": "req_fake"}
    )
    await response.prepare(request)
    for number, (name, data) in enumerate(stream_events(model)):
        event = sse(name, data)
        # Every other event goes out in two writes, cut mid-line, so clients must buffer. Each write
        # is handed to the transport at once and awaits drain itself (StreamResponse.drain() is
        # deprecated, and a DeprecationWarning is an error under the test suite's filterwarnings).
        pieces = (event[: len(event) // 2], event[len(event) // 2 :]) if number % 2 else (event,)
        for piece in pieces:
            await response.write(piece)
    await response.write_eof()
    return response


def _refusal(request: web.Request, body: Any) -> web.Response | None:
    """What the real API refuses before reading a request: no key or version, no model; and the
    ``error-<status>`` scenarios."""
    if not _api_key(request) or not request.headers.get("anthropic-version"):
        return error_response(401, "x-api-key and anthropic-version headers are required")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return error_response(400, "model: Field required")
    status = scenarios.error_status(body["model"])
    return error_response(status, scenarios.ERROR_MESSAGE) if status is not None else None


def _api_key(request: web.Request) -> str:
    """The caller's key: ``x-api-key`` (what the gateway sends) or ``Authorization: Bearer`` (what
    the ``anthropic`` SDK 2.x sends for ``api_key``)."""
    authorization = request.headers.get("authorization", "")
    bearer = authorization[len("bearer ") :] if authorization.lower().startswith("bearer ") else ""
    return request.headers.get("x-api-key") or bearer.strip()


def _usage(output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": scenarios.PROMPT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()
