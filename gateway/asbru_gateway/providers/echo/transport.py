"""An in-process ``UpstreamClient`` that answers like an OpenAI server: the last user message, echoed.

Or a tool call it was told to make, or a tool's result (``commands``): tools and agent mode work
without a model.

It sits where the aiohttp client would, behind the same OpenAI translator, so an echo request
goes through everything a real one does (routing, pool, plugins, streaming) except the network.
Options: ``latency_ms`` before the answer starts, ``chunk_delay_ms`` between streamed words.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.providers.base import UpstreamRequest
from asbru_gateway.providers.echo.commands import Answer, answer


class EchoResponse:
    def __init__(self, status: int, body: bytes | None, chunks: list[bytes], delay_s: float) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {
            "content-type": "text/event-stream" if body is None else "application/json"
        }
        self._body = body or b""
        self._chunks = chunks
        self._delay_s = delay_s

    async def read(self) -> bytes:
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            if self._delay_s:
                await asyncio.sleep(self._delay_s)
            yield chunk

    def release(self) -> None:
        return None


class EchoClient:
    def __init__(self, config: ProviderConfig) -> None:
        self._latency_s = float(config.options.get("latency_ms", 0)) / 1000
        self._chunk_delay_s = float(config.options.get("chunk_delay_ms", 0)) / 1000

    async def send(self, request: UpstreamRequest, *, stream: bool) -> EchoResponse:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        body = orjson.loads(request.body)
        if request.url.endswith("/embeddings"):
            return EchoResponse(200, _embeddings(body), [], 0)
        said = answer(body.get("messages") or [])
        model = str(body.get("model", "echo"))
        if stream:
            return EchoResponse(200, None, _stream_events(said, model, body), self._chunk_delay_s)
        return EchoResponse(200, _completion(said, model), [], 0)

    async def close(self) -> None:
        return None


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _completion(said: Answer, model: str) -> bytes:
    text = said.text
    prompt = _tokens(text)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if said.tool_call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [said.tool_call]}
    return orjson.dumps(
        {
            "id": "chatcmpl-echo-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "stop" if said.tool_call is None else "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": prompt, "total_tokens": 2 * prompt},
        }
    )


def _stream_events(said: Answer, model: str, body: dict[str, Any]) -> list[bytes]:
    text = said.text
    base = {
        "id": "chatcmpl-echo-" + uuid.uuid4().hex[:24],
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    words = text.split(" ") if text else []
    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": word if i == 0 else " " + word}) for i, word in enumerate(words)]
    if said.tool_call is not None:
        events += _tool_call_events(said.tool_call, event)
    events.append(event({}, "stop" if said.tool_call is None else "tool_calls"))
    if (body.get("stream_options") or {}).get("include_usage"):
        tokens = _tokens(text)
        usage = {"prompt_tokens": tokens, "completion_tokens": tokens, "total_tokens": 2 * tokens}
        events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _tool_call_events(call: dict[str, Any], event: Any) -> list[bytes]:
    """A tool call as a model streams it: id and name first, then the arguments in two pieces."""
    function = call["function"]
    arguments = function["arguments"]
    half = len(arguments) // 2
    head = {
        "index": 0,
        "id": call["id"],
        "type": "function",
        "function": {"name": function["name"], "arguments": ""},
    }
    return [
        event({"tool_calls": [head]}),
        event({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]}),
        event({"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]}),
    ]


def _embeddings(body: dict[str, Any]) -> bytes:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, item in enumerate(items):
        digest = hashlib.sha256(str(item).encode()).digest()
        data.append({"object": "embedding", "index": index, "embedding": [b / 255 for b in digest[:8]]})
    tokens = sum(_tokens(str(item)) for item in items)
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": body.get("model", "echo"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
