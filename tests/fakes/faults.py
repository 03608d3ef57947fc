"""A fault-injecting upstream speaking the OpenAI wire format: each model name is a fault.

=========================  ==================================================================
model                      what the upstream does
=========================  ==================================================================
``ok``                     a normal answer (JSON, or a stream of several chunks + ``[DONE]``)
``status-<code>``          an OpenAI error body with that status
``status-429-ra-<s>``      429 with ``Retry-After: <s>``
``reset``                  drops the connection before answering
``stall``                  JSON: never answers. Stream: headers and a keep-alive comment, then nothing
``slow-<ms>``              answers after ``ms`` milliseconds
``bad-json``               200 with a body that is not JSON
``html``                   200 ``text/html`` (a captive portal, a misrouted proxy)
``bad-sse``                200 stream whose first event is not JSON
``bad-sse-midstream``      200 stream: one good chunk, then an event that is not JSON
``die-midstream``          200 stream: one chunk, then the connection drops
``stall-midstream``        200 stream: one chunk, then nothing (the connection stays open)
``flood``                  200 stream of ``FLOOD_EVENTS`` events of ~8 KiB each, as fast as it is read
``key-error-first``        stream whose first event is an error quoting the API key it was sent
``key-error-midstream``    stream: one chunk, then an error event quoting the API key
``key-error``              JSON error (401) quoting the API key
=========================  ==================================================================

Every request is recorded (``Recorder``), so tests count attempts per fault exactly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import Recorder

TEXT_PIECES = ("Fault", "-free", " answer")
FLOOD_EVENTS = 1024
"""``flood``: 8 MiB in all, more than loopback buffers hold between a gateway and a slow client."""
TEXT = "".join(TEXT_PIECES)


def make_app(recorder: Recorder) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        item = await recorder.record(request)
        body = item.json or {}
        model = str(body.get("model", ""))
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        stream = bool(body.get("stream"))
        if model.startswith("slow-"):
            await asyncio.sleep(int(model.split("-")[1]) / 1000)
        early = await _before_answer(request, model, key, stream)
        if early is not None:
            return early
        if not stream:
            return web.json_response(_completion(model))
        return await _stream(request, model, key)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def provider_config(url: str, name: str = "faulty", **network: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "openai",
        "base_url": f"{url}/v1",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_OPENAI_KEY"}],
        "network": {"max_retries": 0, **network},
    }


async def _before_answer(
    request: web.Request, model: str, key: str, stream: bool
) -> web.StreamResponse | None:
    if model.startswith("status-"):
        parts = model.split("-")
        headers = {"retry-after": parts[3]} if len(parts) == 4 and parts[2] == "ra" else None
        return _error(int(parts[1]), f"fault {model}", headers)
    if model == "key-error":
        return _error(401, f"Incorrect API key provided: {key}")
    if model == "reset":
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(3600)
    if model == "stall" and not stream:
        await asyncio.sleep(3600)
    if model == "bad-json":
        return web.Response(body=b'{"id": "chatcmpl-broken", "choices": [', content_type="application/json")
    if model == "html":
        return web.Response(body=b"<html><body>Bad gateway</body></html>", content_type="text/html")
    return None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = (
        "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    )
    error = {"message": message, "type": kind, "param": None, "code": None}
    return web.json_response({"error": error}, status=status, headers=headers)


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _stream(request: web.Request, model: str, key: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    if model == "stall":
        await response.write(b": keep-alive\n\n")
        await asyncio.sleep(3600)
    if model == "bad-sse":
        await response.write(b"data: {not json at all\n\n")
        await response.write_eof()
        return response
    if model == "key-error-first":
        error = {"error": {"message": f"invalid key {key}", "type": "server_error"}}
        await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
        await response.write_eof()
        return response
    await response.write(_chunk(model, {"role": "assistant", "content": TEXT_PIECES[0]}))
    if model == "die-midstream":
        assert request.transport is not None
        request.transport.abort()
        return response
    if model == "stall-midstream":
        await asyncio.sleep(3600)
    if model == "bad-sse-midstream":
        await response.write(b"data: <html>oops</html>\n\n")
        await response.write_eof()
        return response
    if model == "key-error-midstream":
        error = {"error": {"message": f"quota exceeded for key {key}", "type": "server_error"}}
        await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
        await response.write_eof()
        return response
    if model == "flood":
        event = _chunk(model, {"content": "x" * 8000})
        for _ in range(FLOOD_EVENTS):
            await response.write(event)
    for piece in TEXT_PIECES[1:]:
        await response.write(_chunk(model, {"content": piece}))
    await response.write(_chunk(model, {}, "stop"))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
