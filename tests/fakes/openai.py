"""A fake OpenAI (and OpenAI-compatible, and Azure) upstream, speaking the documented wire format.

Serves ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``POST /v1/responses`` and
``POST /v1/completions`` (``openai_native.py``; configure ``base_url=f"{url}/v1"``)
and Azure's ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
(``base_url=url``). Plays the scenarios of ``scenarios.py``, plus two for retry tests:

- ``flaky-<n>-<status>``: the first ``n`` requests for that model answer ``status``, then succeed.
- ``slow-<ms>``: answers after ``ms`` milliseconds; streams wait ``ms`` between chunks.
- ``echo-key``: an error message that quotes the key it was sent (to prove the gateway masks it).
- ``die-midstream``: a stream that sends one chunk, then drops the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import openai_native as native
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]
Streamer = Callable[[web.Request, str, dict[str, Any]], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(recorder: Recorder, *, azure: bool = False) -> web.Application:
    counts: Counter[str] = Counter()

    async def admit(request: web.Request) -> tuple[str, dict[str, Any], web.StreamResponse | None]:
        """Record, authenticate and play the error scenarios: (model, body, early answer or None)."""
        item = await recorder.record(request)
        if azure:
            key = request.headers.get("api-key")
            if "api-version" not in request.query:
                return "", {}, _error(400, "missing api-version")
        else:
            auth = request.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        if not key:
            return "", {}, _error(401, "missing API key", "invalid_api_key", "authentication_error")
        body = item.json or {}
        model = str(body.get("model") or request.match_info.get("deployment", ""))
        counts[model] += 1
        return model, body, await _early_answer(model, key, counts[model])

    def endpoint(answer: Answer, stream: Streamer) -> Handler:
        """A generating endpoint: the error scenarios first, then a JSON answer or a stream."""

        async def handle(request: web.Request) -> web.StreamResponse:
            model, body, early = await admit(request)
            if early is not None:
                return early
            if body.get("stream"):
                return await stream(request, model, body)
            return web.json_response(answer(model, body))

        return handle

    chat = endpoint(lambda model, body: _completion(model), _stream)
    responses = endpoint(native.response_object, native.stream_response)
    completions = endpoint(lambda model, body: native.text_completion(model), native.stream_completion)

    async def embeddings(request: web.Request) -> web.Response:
        item = await recorder.record(request)
        body = item.json or {}
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(items))]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": sc.PROMPT_TOKENS, "total_tokens": sc.PROMPT_TOKENS},
            }
        )

    app = web.Application()
    if azure:
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", embeddings)
    else:
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_post("/v1/embeddings", embeddings)
        app.router.add_post("/v1/responses", responses)
        app.router.add_post("/v1/completions", completions)
    return app


async def _early_answer(model: str, key: str, count: int) -> web.StreamResponse | None:
    status = sc.error_status(model)
    if status is not None:
        return _error(status, sc.ERROR_MESSAGE, headers={"retry-after": "0"} if status == 429 else None)
    if model == "echo-key":
        return _error(401, f"Incorrect API key provided: {key}", "invalid_api_key", "authentication_error")
    if model == "hang":
        await asyncio.sleep(3600)
    if model.startswith("flaky-"):
        _, times, status_text = model.split("-")
        if count <= int(times):
            return _error(int(status_text), "flaky", headers={"retry-after": "0"})
    if model.startswith("slow-") and not model.endswith("-stream"):
        await asyncio.sleep(int(model.split("-")[1]) / 1000)
    return None


def _error(
    status: int,
    message: str,
    code: str | None = None,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error = {
        "message": message,
        "type": type_
        or (
            "rate_limit_error"
            if status == 429
            else "server_error"
            if status >= 500
            else "invalid_request_error"
        ),
        "param": None,
        "code": code,
    }
    return web.json_response({"error": error}, status=status, headers=headers)


def _completion(model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": sc.TEXT, "refusal": None}
    finish = "stop"
    if sc.wants_tool(model):
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": sc.TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": sc.TOOL_NAME, "arguments": sc.TOOL_ARGS},
                }
            ],
        }
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": sc.PROMPT_TOKENS,
            "completion_tokens": sc.COMPLETION_TOKENS,
            "total_tokens": sc.PROMPT_TOKENS + sc.COMPLETION_TOKENS,
        },
    }


async def _stream(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    delay = int(model.split("-")[1]) / 1000 if model.startswith("slow-") else 0
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    async def emit(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if delay:
            await asyncio.sleep(delay)

    await emit({"role": "assistant", "content": ""})
    if model == "die-midstream":
        await emit({"content": sc.STREAM_PIECES[0]})
        assert request.transport is not None
        request.transport.close()
        return response
    if sc.wants_tool(model):
        await emit(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": sc.TOOL_CALL_ID,
                        "type": "function",
                        "function": {"name": sc.TOOL_NAME, "arguments": ""},
                    }
                ]
            }
        )
        for piece in sc.TOOL_ARG_PIECES:
            await emit({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        await emit({}, "tool_calls")
    else:
        for piece in sc.STREAM_PIECES:
            await emit({"content": piece})
        await emit({}, "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {
            "prompt_tokens": sc.PROMPT_TOKENS,
            "completion_tokens": sc.COMPLETION_TOKENS,
            "total_tokens": sc.PROMPT_TOKENS + sc.COMPLETION_TOKENS,
        }
        await response.write(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def provider_config(url: str, name: str = "openai", *, type_: str = "openai") -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "base_url": f"{url}/v1",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_OPENAI_KEY"}],
        "network": {"max_retries": 0},
    }
