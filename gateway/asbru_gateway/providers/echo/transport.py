"""An in-process ``UpstreamClient`` that answers like an OpenAI server: the last user message, echoed.

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
        text = _last_user_text(body.get("messages") or [])
        model = str(body.get("model", "echo"))
        if stream:
            return EchoResponse(200, None, _stream_events(text, model, body), self._chunk_delay_s)
        return EchoResponse(200, _completion(text, model), [], 0)

    async def close(self) -> None:
        return None


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _completion(text: str, model: str) -> bytes:
    prompt = _tokens(text)
    return orjson.dumps(
        {
            "id": "chatcmpl-echo-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": prompt, "total_tokens": 2 * prompt},
        }
    )


def _stream_events(text: str, model: str, body: dict[str, Any]) -> list[bytes]:
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
    events.append(event({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        tokens = _tokens(text)
        usage = {"prompt_tokens": tokens, "completion_tokens": tokens, "total_tokens": 2 * tokens}
        events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


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
