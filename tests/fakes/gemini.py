"""A fake Google Gemini API (``generativelanguage.googleapis.com/v1beta``) playing ``scenarios.py``.

Serves ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
``:embedContent``, ``:batchEmbedContents`` and ``:countTokens`` (also under ``/v1``, as Google
does). Point a provider at it with ``base_url = f"{url}/v1beta"`` (``provider_config(url)`` builds
that config snippet); point the ``google-genai`` SDK at it with
``HttpOptions(base_url=url, api_version="v1beta")``.

Wire format as Google sends it: camelCase JSON, ``usageMetadata``, ``finishReason``, errors as
``{"error": {"code", "message", "status"}}``, SSE events ``data: {...}\\r\\n\\r\\n`` each holding a
whole ``GenerateContentResponse`` with only the new parts, and no end marker. Function calls arrive
whole, in one part, even when streamed: that is how Gemini streams them. The ``x-goog-api-key``
header is required (401 ``UNAUTHENTICATED`` without it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import scenarios
from tests.fakes.server import Recorder

RESPONSE_ID = "fake-gemini-response-0001"
EMBEDDING = [0.25, -0.5, 0.75]
COUNTED_TOKENS = 42
"""What ``countTokens`` answers: distinct from any local estimate, so a test sees who counted."""
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def make_app(recorder: Recorder) -> web.Application:
    """The fake's aiohttp app; every request is recorded before it is answered."""

    hanging: set[asyncio.Future[None]] = set()

    async def handle(request: web.Request) -> web.StreamResponse:
        await recorder.record(request)
        if request.match_info["target"].startswith("hang:"):
            await _hang(hanging)
        if not request.headers.get("x-goog-api-key"):
            return error_response(401, "Method doesn't allow unregistered callers. Use an API key.")
        model, _, method = request.match_info["target"].rpartition(":")
        if method == "generateContent":
            return _generate(model)
        if method == "streamGenerateContent":
            if request.query.get("alt") != "sse":
                return error_response(400, "this fake streams only with alt=sse")
            return await _stream(request, model)
        if method == "batchEmbedContents":
            return _embed(await request.json())
        if method == "embedContent":
            return web.json_response({"embedding": {"values": EMBEDDING}}, dumps=_dumps)
        if method == "countTokens":
            return web.json_response({"totalTokens": COUNTED_TOKENS}, dumps=_dumps)
        return error_response(404, f"unknown method {method!r}")

    async def release_hanging(_: web.Application) -> None:
        for future in list(hanging):  # shutdown: end hung handlers instead of leaving them pending
            future.cancel()

    app = web.Application()
    app.on_shutdown.append(release_hanging)
    for version in ("v1beta", "v1"):  # Google serves both; google-genai >= 3 defaults to v1
        app.router.add_post(f"/{version}/models/{{target}}", handle)
    return app


def provider_config(url: str, name: str = "gemini") -> dict[str, Any]:
    """A config-dict provider entry of type ``gemini`` pointing at a fake served at ``url``."""
    return {
        "name": name,
        "type": "gemini",
        "base_url": f"{url}/v1beta",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_GEMINI_KEY"}],
    }


def error_response(status: int, message: str = scenarios.ERROR_MESSAGE) -> web.Response:
    """A Google API error body; 429 carries ``retry-after: 0`` as the scenarios ask."""
    body = {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}
    headers = {"retry-after": "0"} if status == 429 else None
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


async def _hang(hanging: set[asyncio.Future[None]]) -> None:
    """The ``hang`` scenario: wait until the fake shuts down."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    hanging.add(future)
    try:
        await future
    finally:
        hanging.discard(future)


def _scenario_error(model: str) -> web.Response | None:
    """The error answer an ``error-<status>`` scenario model asks for."""
    status = scenarios.error_status(model)
    return None if status is None else error_response(status)


def _generate(model: str) -> web.Response:
    failure = _scenario_error(model)
    if failure is not None:
        return failure
    if scenarios.wants_tool(model):
        parts: list[dict[str, Any]] = [_function_call_part()]
    else:
        parts = [{"text": scenarios.TEXT}]
    return web.json_response(_answer(model, parts, finished=True, usage=_usage()), dumps=_dumps)


async def _stream(request: web.Request, model: str) -> web.StreamResponse:
    failure = _scenario_error(model)
    if failure is not None:
        return failure
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for chunk in _stream_chunks(model):
        # One write per event: aiohttp's write() hands it to the socket and waits for the buffer to
        # drain (StreamResponse.drain() is deprecated since aiohttp 3.14 and warns).
        await response.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
    await response.write_eof()
    return response


def _stream_chunks(model: str) -> list[dict[str, Any]]:
    """Text: one chunk per piece, the last with finishReason and full usage. Tool: the whole call
    in one chunk (Gemini sends function calls whole)."""
    if scenarios.wants_tool(model):
        return [_answer(model, [_function_call_part()], finished=True, usage=_usage())]
    pieces = scenarios.STREAM_PIECES
    chunks = [
        _answer(model, [{"text": piece}], finished=False, usage=_usage(prompt_only=True)) for piece in pieces
    ]
    chunks[-1] = _answer(model, [{"text": pieces[-1]}], finished=True, usage=_usage())
    return chunks


def _answer(
    model: str, parts: list[dict[str, Any]], *, finished: bool, usage: dict[str, Any]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finished:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": RESPONSE_ID,
    }


def _function_call_part() -> dict[str, Any]:
    args = orjson.loads(scenarios.TOOL_ARGS)
    return {"functionCall": {"id": scenarios.TOOL_CALL_ID, "name": scenarios.TOOL_NAME, "args": args}}


def _usage(*, prompt_only: bool = False) -> dict[str, int]:
    if prompt_only:
        return {"promptTokenCount": scenarios.PROMPT_TOKENS, "totalTokenCount": scenarios.PROMPT_TOKENS}
    return {
        "promptTokenCount": scenarios.PROMPT_TOKENS,
        "candidatesTokenCount": scenarios.COMPLETION_TOKENS,
        "totalTokenCount": scenarios.PROMPT_TOKENS + scenarios.COMPLETION_TOKENS,
    }


def _embed(body: Any) -> web.Response:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return error_response(400, "requests must be a non-empty array")
    embeddings = [{"values": EMBEDDING} for _ in requests]
    return web.json_response({"embeddings": embeddings}, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
