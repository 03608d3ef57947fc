"""Executing a plan: candidates in order, retries with backoff per candidate, typed fallbacks.

For each candidate: take a slot in its provider's pool, choose a key, let the translator build
the request, send it over the provider's client, map the answer. A failure whose trigger is
retryable is retried on the same candidate (``backoff.retry_delay``); when retries are spent,
a failure whose trigger is in the plan's fallback triggers moves to the next candidate. If every
candidate fails, the *primary* (first) error is what the client gets.

Provider runtimes are looked up by name at attempt time from the *live* pool set, so a request
that began before a reload still lands on a pool that is open; a queued caller whose pool was
retired by a reload re-queues on the replacement (``PoolRetiredError``). That is why no request
fails because of a reload.

Streams: the client's response starts only when the upstream's first event is in hand, so an
upstream that fails before sending anything still falls back; from then on the stream belongs to
the caller (``StreamStart``), which holds the pool slot until the stream ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import orjson

from asbru_gateway.errors import (
    GatewayError,
    UnsupportedError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    trigger_for_status,
)
from asbru_gateway.observability import metrics
from asbru_gateway.plugins.base import RequestContext
from asbru_gateway.pool.bounded import PoolRetiredError
from asbru_gateway.pool.provider_runtime import ProviderRuntime
from asbru_gateway.providers.base import (
    ChatResult,
    EmbeddingsTranslator,
    StreamDecoder,
    Target,
    UpstreamRequest,
)
from asbru_gateway.providers.transport import UpstreamResponse, retry_after_seconds
from asbru_gateway.routing.backoff import retry_delay
from asbru_gateway.routing.keys import choose_key
from asbru_gateway.routing.plan import Candidate, Plan

RuntimeLookup = Callable[[str], ProviderRuntime | None]
T = TypeVar("T")
Attempt = Callable[[RequestContext, ProviderRuntime, Candidate], Awaitable[T]]


@dataclass(slots=True)
class StreamStart:
    """A stream whose first events arrived: the caller sends them, then drains ``chunks``."""

    first_events: list[bytes]
    chunks: AsyncIterator[bytes]
    decoder: StreamDecoder
    _response: UpstreamResponse
    _runtime: ProviderRuntime
    _released: bool = False

    def release(self) -> None:
        """Return the upstream connection and the pool slot. Idempotent."""
        if not self._released:
            self._released = True
            self._response.release()
            self._runtime.pool.release()


class Dispatcher:
    __slots__ = ("_lookup",)

    def __init__(self, lookup: RuntimeLookup) -> None:
        self._lookup = lookup

    # Plain functions returning the coroutine: one frame less per request than ``async def``.
    def chat(self, ctx: RequestContext, plan: Plan) -> Awaitable[ChatResult]:
        return self._run(ctx, plan, self._call_once)

    def chat_stream(self, ctx: RequestContext, plan: Plan) -> Awaitable[StreamStart]:
        return self._run(ctx, plan, self._stream_once)

    def embeddings(self, ctx: RequestContext, plan: Plan) -> Awaitable[ChatResult]:
        return self._run(ctx, plan, self._call_once)

    async def _run(self, ctx: RequestContext, plan: Plan, once: Attempt[T]) -> T:
        primary: GatewayError | None = None
        for index, candidate in enumerate(plan.candidates):
            if index:
                ctx.fallbacks += 1
                metrics.FALLBACKS.labels(plan.candidates[index - 1].provider).inc()
            ctx.provider, ctx.model = candidate.provider, candidate.model
            try:
                return await self._with_retries(ctx, candidate, once)
            except GatewayError as error:
                primary = primary or error
                if error.trigger not in plan.triggers:
                    break
        assert primary is not None
        raise primary

    async def _with_retries(self, ctx: RequestContext, candidate: Candidate, once: Attempt[T]) -> T:
        attempt = 0
        while True:
            runtime = self._lookup(candidate.provider)
            if runtime is None:
                raise UpstreamConnectError(f"provider {candidate.provider!r} is no longer configured")
            try:
                return await once(ctx, runtime, candidate)
            except PoolRetiredError:
                continue  # a reload replaced this pool while we queued: queue on the new one
            except GatewayError as error:
                delay = retry_delay(error, attempt, runtime.config.network)
                if delay is None:
                    raise
                attempt += 1
                ctx.retries += 1
                await asyncio.sleep(delay)

    async def _send(
        self, ctx: RequestContext, runtime: ProviderRuntime, request: UpstreamRequest, *, stream: bool
    ) -> UpstreamResponse:
        """Send; a non-2xx answer is read, released and raised as the provider's mapped error."""
        ctx.attempts += 1
        response = await runtime.client.send(request, stream=stream)
        if response.status < 300:
            return response
        try:
            body = await response.read()
        finally:
            response.release()
        raise upstream_error(runtime, response.status, body, response.headers)

    def _target(self, runtime: ProviderRuntime, candidate: Candidate) -> Target:
        key = choose_key(runtime, candidate.model)
        return Target(runtime.base_url, candidate.model, key.value.reveal() if key else None, runtime.config)

    async def _call_once(
        self, ctx: RequestContext, runtime: ProviderRuntime, candidate: Candidate
    ) -> ChatResult:
        """One non-streaming attempt (chat or embeddings): a pool slot for its whole length."""
        translator = runtime.translator
        embedder: EmbeddingsTranslator | None = None
        if ctx.endpoint == "embeddings":
            if not isinstance(translator, EmbeddingsTranslator):
                raise UnsupportedError(
                    f"provider {runtime.name!r} ({runtime.config.type}) does not offer embeddings",
                    param="model",
                )
            embedder = translator
        await runtime.pool.acquire()
        try:
            target = self._target(runtime, candidate)
            if embedder is not None:
                request = embedder.embeddings_request(ctx.body, target)
            else:
                request = translator.chat_request(ctx.body, target, stream=False)
            started = time.perf_counter()
            response = await self._send(ctx, runtime, request, stream=False)
            try:
                body = await response.read()
            finally:
                response.release()
            ctx.upstream_latency_s = time.perf_counter() - started
            if embedder is not None:
                return embedder.embeddings_response(body, target)
            return translator.chat_response(body, target)
        finally:
            runtime.pool.release()

    async def _stream_once(
        self, ctx: RequestContext, runtime: ProviderRuntime, candidate: Candidate
    ) -> StreamStart:
        await runtime.pool.acquire()
        handed_over = False
        try:
            target = self._target(runtime, candidate)
            request = runtime.translator.chat_request(ctx.body, target, stream=True)
            started = time.perf_counter()
            response = await self._send(ctx, runtime, request, stream=True)
            decoder = runtime.translator.stream_decoder(ctx.body, target)
            try:
                chunks = response.iter_chunks()
                first = await _first_events(chunks, decoder)
            except BaseException:
                response.release()
                raise
            ctx.upstream_latency_s = time.perf_counter() - started
            handed_over = True
            return StreamStart(first, chunks, decoder, response, runtime)
        finally:
            if not handed_over:
                runtime.pool.release()


async def _first_events(chunks: AsyncIterator[bytes], decoder: StreamDecoder) -> list[bytes]:
    """Read until the decoder yields an event. An error or EOF before that is an attempt failure."""
    while True:
        chunk = await anext(chunks, None)
        if chunk is None:
            events = decoder.finish()
            if not events:
                raise UpstreamProtocolError("upstream closed the stream before sending an event")
        else:
            events = decoder.feed(chunk)
        if not events:
            continue
        if decoder.failed and events[0].startswith(b'data: {"error"'):
            raise _stream_error(events[0])
        return events


def _stream_error(event: bytes) -> UpstreamError:
    """An error event that came before anything reached the client: fall back like an HTTP error."""
    try:
        error = orjson.loads(event.removeprefix(b"data: ").strip()).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    message = str(error.get("message") or "upstream stream failed")
    return UpstreamError(
        message,
        status=502,
        type=str(error.get("type") or "api_error"),
        code=error.get("code"),
        trigger="server_error",
    )


def upstream_error(
    runtime: ProviderRuntime, status: int, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """The translator's mapping of an upstream error, with any of the provider's keys masked out."""
    mapped = runtime.translator.error(status, body, headers)
    message = mapped.message
    for key in runtime.keys:
        secret = key.value.reveal()
        if secret in message:
            message = message.replace(secret, "***")
    return UpstreamError(
        message,
        status=mapped.status,
        type=mapped.type,
        code=mapped.code,
        param=mapped.param,
        retry_after=retry_after_seconds(headers) if mapped.retry_after is None else mapped.retry_after,
        trigger=trigger_for_status(status),
    )
