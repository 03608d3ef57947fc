"""Executing a plan: candidates in order, retries with backoff per candidate, fallbacks.

For each candidate: take a slot in its provider's pool, choose a key, let the translator build the
upstream request (the client's own body when the provider speaks its dialect, the core body
otherwise), run the attempt hooks, send it over the provider's client, and map the answer. A
failure whose trigger is retryable is retried on the same candidate (``backoff.retry_delay``); when
retries are spent, the plan decides whether the next candidate is tried (``Plan.falls_back``). If
every candidate fails, the *primary* (first) error is what the client gets.

Provider runtimes come from the pool set of the snapshot the request started with, never from the
live one: a request sees one revision from start to end. A reload retires a replaced runtime only
after its last request (in flight or queued) is done, which is why no request fails because of one.

Streams: the response starts only once the upstream's first items are in hand, so an upstream that
fails before sending anything still falls back; from then on the stream belongs to the caller
(``UpstreamStream``), which holds the pool slot until it is released.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

from asbru_gateway.core.attempt import Attempt
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.request import CHAT, EMBEDDINGS, LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import (
    DeadlineExceededError,
    GatewayError,
    UnsupportedError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    trigger_for_status,
)
from asbru_gateway.observability import metrics
from asbru_gateway.plugins.pipeline import Pipeline
from asbru_gateway.pool.pool_set import PoolSet
from asbru_gateway.pool.provider_runtime import ProviderRuntime, ResolvedKey
from asbru_gateway.providers.base import StreamDecoder, Target, UpstreamRequest
from asbru_gateway.providers.transport import UpstreamResponse, retry_after_seconds
from asbru_gateway.routing.backoff import retry_delay
from asbru_gateway.routing.deadlines import Deadlines, deadlines
from asbru_gateway.routing.keys import choose_key
from asbru_gateway.routing.plan import Candidate, Plan

log = logging.getLogger(__name__)
T = TypeVar("T")
Once = Callable[[LLMRequest, ProviderRuntime, Candidate, Attempt | None], Awaitable[T]]


class UpstreamStream:
    """A stream whose first items arrived: the caller sends ``first``, then iterates the rest.

    Iterating yields the decoded items of each upstream read; at upstream EOF the decoder's tail.
    ``error`` says why it ended early (an upstream error event, or a close before the end marker),
    with the provider's keys masked out. ``release`` returns the connection and the pool slot.

    Each wait for upstream bytes is bounded by ``stream_idle_timeout_s``, kept by the deadline
    watchman for ``reader``, the task that opened the stream and iterates it (the request's
    handler): a wait that lasts longer ends the stream with a timeout error. Only the waits
    count, not the time the caller spends sending what arrived.
    """

    __slots__ = (
        "_chunks",
        "_ended",
        "_idle_s",
        "_reader",
        "_released",
        "_response",
        "_runtime",
        "_watchman",
        "decoder",
        "first",
        "format",
        "waiting_since",
    )

    def __init__(
        self,
        first: list[StreamItem],
        chunks: AsyncIterator[bytes],
        decoder: StreamDecoder,
        response: UpstreamResponse,
        runtime: ProviderRuntime,
        *,
        watch: tuple[Deadlines, asyncio.Task[object]],
    ) -> None:
        self.first = first
        self.format = decoder.format
        self.decoder = decoder
        self._chunks = chunks
        self._response = response
        self._runtime = runtime
        self._ended = False
        self._released = False
        self._idle_s = runtime.config.network.stream_idle_timeout_s
        self._watchman, self._reader = watch
        self.waiting_since = 0.0
        """``time.monotonic()`` when the current wait for upstream bytes began; 0.0 between waits."""
        self._watchman.watch_idle(self._reader, self, self._idle_s)

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> list[StreamItem]:
        decoder = self.decoder
        while not self._ended and not decoder.failed:
            self.waiting_since = time.monotonic()
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True
                tail = decoder.finish()
                if tail:
                    return tail
                break
            except asyncio.CancelledError:
                if not self._watchman.unwatch_idle(self._reader):
                    raise
                raise UpstreamTimeoutError(
                    f"upstream sent nothing for {self._idle_s:g} s mid-stream"
                ) from None
            finally:
                self.waiting_since = 0.0
            items = decoder.feed(chunk)
            if items:
                return items
        raise StopAsyncIteration

    @property
    def done(self) -> bool:
        return self.decoder.done

    @property
    def usage(self) -> Usage | None:
        return self.decoder.usage

    @property
    def error(self) -> GatewayError | None:
        decoder = self.decoder
        if decoder.error is not None:
            return masked(self._runtime, decoder.error)
        if not decoder.done:
            return UpstreamProtocolError("upstream ended the stream before its end")
        return None

    def release(self) -> None:
        """Return the upstream connection and the pool slot. Idempotent."""
        if not self._released:
            self._released = True
            self._watchman.unwatch_idle(self._reader)
            self._response.release()
            self._runtime.pool.release()


class Dispatcher:
    """Runs plans against one snapshot's pools, with that snapshot's attempt hooks."""

    __slots__ = ("_hooks", "_pools")

    def __init__(self, pools: PoolSet, pipeline: Pipeline) -> None:
        self._pools = pools
        self._hooks = pipeline if pipeline.has_attempt_hooks else None

    # Plain functions returning the coroutine: one frame less per request than ``async def``.
    def call(self, request: LLMRequest, plan: Plan) -> Awaitable[Reply]:
        """A non-streaming call (chat, embeddings, native count_tokens)."""
        return self._run(request, plan, self._call_once)

    def stream(self, request: LLMRequest, plan: Plan) -> Awaitable[UpstreamStream]:
        return self._run(request, plan, self._stream_once)

    async def _run(self, request: LLMRequest, plan: Plan, once: Once[T]) -> T:
        primary: GatewayError | None = None
        candidates = plan.candidates
        index: int | None = 0
        while index is not None:
            candidate = candidates[index]
            request.provider, request.upstream_model = candidate.provider, candidate.model
            try:
                return await self._with_retries(request, plan, index, once)
            except DeadlineExceededError as error:
                raise primary or error from None
            except GatewayError as error:
                primary = primary or error
                index = plan.next_after(index, error)
                if index is not None:
                    request.fallbacks_used += 1
                    metrics.FALLBACKS.labels(candidate.provider).inc()
        assert primary is not None
        raise primary

    async def _with_retries(self, request: LLMRequest, plan: Plan, index: int, once: Once[T]) -> T:
        """Attempts on one candidate: retried in place only when ``backoff.retry_delay`` says so."""
        candidate = plan.candidates[index]
        runtime = self._pools.get(candidate.provider)
        if runtime is None:
            raise UpstreamConnectError(f"provider {candidate.provider!r} is not configured")
        retry = 0
        while True:
            attempt = None
            if self._hooks is not None:
                attempt = Attempt(
                    provider=runtime.name,
                    model=candidate.model,
                    key=None,
                    url="",
                    number=request.attempts + 1,
                    stream=request.stream,
                )
            try:
                result = await once(request, runtime, candidate, attempt)
            except GatewayError as error:
                if attempt is not None and self._hooks is not None:
                    attempt.error, attempt.status = error, error.status
                    await self._hooks.after_attempt(request, attempt)
                log_failed_attempt(request, runtime.name, error)
                can_fall_back = plan.next_after(index, error) is not None
                delay = retry_delay(error, retry, runtime.config.network, can_fall_back=can_fall_back)
                if delay is None or time.perf_counter() + delay >= request.deadline:
                    raise
                retry += 1
                request.retries += 1
                metrics.RETRIES.labels(runtime.name).inc()
                await asyncio.sleep(delay)
                continue
            if attempt is not None and self._hooks is not None:
                attempt.status, attempt.usage = 200, request.usage
                await self._hooks.after_attempt(request, attempt)
            return result

    def _prepare(
        self, request: LLMRequest, runtime: ProviderRuntime, candidate: Candidate, *, stream: bool
    ) -> tuple[Target, UpstreamRequest, bool]:
        """Key, target and upstream request of one attempt; True when it passes the native body."""
        key = choose_key(runtime, candidate.model)
        request.key_name = key.name if key is not None else None
        api_key = key.value.reveal() if key is not None else None
        target = Target(runtime.base_url, candidate.model, api_key, runtime.config)
        if request.native is None and request.operation == CHAT and not request.extra_tools:
            return target, runtime.translator.chat_request(request.core, target, stream=stream), False
        upstream, native = build_upstream(request, runtime, target, stream=stream)
        request.passthrough = native
        return target, upstream, native

    async def _before_attempt(
        self,
        request: LLMRequest,
        runtime: ProviderRuntime,
        target: Target,
        upstream: UpstreamRequest,
        attempt: Attempt,
    ) -> tuple[UpstreamRequest, bool]:
        """The attempt hooks, before the call: extra headers (this attempt only) or a pinned key."""
        assert self._hooks is not None
        attempt.key, attempt.url = request.key_name, upstream.url
        await self._hooks.before_attempt(request, attempt)
        native = request.native is not None and request.native_format in runtime.native_formats
        if attempt.key != request.key_name:
            key = pinned_key(runtime, attempt.key)
            request.key_name = key.name
            target.api_key = key.value.reveal()
            upstream, native = build_upstream(request, runtime, target, stream=attempt.stream)
            request.passthrough = native
        if attempt.headers:
            upstream.headers = {**upstream.headers, **_safe_headers(attempt.headers)}
        return upstream, native

    async def _send(
        self, request: LLMRequest, runtime: ProviderRuntime, upstream: UpstreamRequest, *, stream: bool
    ) -> UpstreamResponse:
        """Send; a non-2xx answer is read, released and raised as the provider's mapped error."""
        request.attempts += 1
        response = await runtime.client.send(upstream, stream=stream)
        if response.status < 300:
            return response
        try:
            body = await response.read()
        finally:
            response.release()
        raise upstream_error(runtime, response.status, body, response.headers)

    async def _call_once(
        self, request: LLMRequest, runtime: ProviderRuntime, candidate: Candidate, attempt: Attempt | None
    ) -> Reply:
        """One non-streaming attempt: a pool slot for its whole length, within two limits.

        The attempt's own limit (``request_timeout_s``, its wait for a pool slot included) and the
        request's deadline are both kept by the loop's deadline watchman, whichever is nearer: an
        aiohttp total timeout would arm and cancel a timer per request (~19 k instructions,
        measured under callgrind, of ~660 k for the whole request). An attempt over its own limit
        is a timeout like any other (the next target may be tried); past the request's deadline
        nothing more is tried.
        """
        budget = request.deadline - time.perf_counter()
        if budget <= 0:
            raise _deadline(request)
        limit = runtime.config.network.request_timeout_s
        watchman, task = _watched(budget if budget < limit else limit)
        try:
            await runtime.pool.acquire()
            try:
                target, upstream, native = self._prepare(request, runtime, candidate, stream=False)
                if attempt is not None:
                    upstream, native = await self._before_attempt(request, runtime, target, upstream, attempt)
                started = time.perf_counter()
                response = await self._send(request, runtime, upstream, stream=False)
                try:
                    body = await response.read()
                finally:
                    response.release()
                request.upstream_latency_s = time.perf_counter() - started
                if native or request.operation != CHAT:
                    reply = read_reply(request, runtime, target, body, native=native)
                else:
                    reply = runtime.translator.chat_response(body, target)
                request.usage = reply.usage
                return reply
            finally:
                runtime.pool.release()
        except asyncio.CancelledError:
            if not watchman.unwatch(task):
                raise
            if budget < limit:
                raise _deadline(request) from None
            raise UpstreamTimeoutError(f"upstream timed out: no complete answer within {limit:g} s") from None
        finally:
            if watchman.unwatch(task):
                await watchman.absorb()  # a limit was reached as the answer arrived: keep the answer

    async def _stream_once(
        self, request: LLMRequest, runtime: ProviderRuntime, candidate: Candidate, attempt: Attempt | None
    ) -> UpstreamStream:
        """One stream attempt: done when the first items are in hand, within the first-token timeout.

        An upstream that sends headers (or keep-alive comments) but no event in time is a timeout like
        any other, so the request falls over to its next target instead of hanging.
        """
        first_token_s = runtime.config.network.first_token_timeout_s
        budget = min(first_token_s, _remaining(request))
        watchman, task = _watched(budget)
        await runtime.pool.acquire()
        handed_over = False
        try:
            target, upstream, native = self._prepare(request, runtime, candidate, stream=True)
            if attempt is not None:
                upstream, native = await self._before_attempt(request, runtime, target, upstream, attempt)
            started = time.perf_counter()
            response = await self._send(request, runtime, upstream, stream=True)
            try:
                decoder = stream_decoder(request, runtime, target, native=native)
                chunks = response.iter_chunks()
                first = await _first_items(chunks, decoder)
            except BaseException:
                response.release()
                raise
            if decoder.failed and not first:
                response.release()
                raise _before_first(runtime, decoder)
            request.upstream_latency_s = time.perf_counter() - started
            handed_over = True
            return UpstreamStream(first, chunks, decoder, response, runtime, watch=(watchman, task))
        except asyncio.CancelledError:
            if not watchman.unwatch(task):
                raise
            if budget < first_token_s:
                raise _deadline(request) from None
            raise UpstreamTimeoutError(f"upstream sent no first event within {first_token_s:g} s") from None
        finally:
            if not handed_over:
                runtime.pool.release()
            if watchman.unwatch(task):
                await watchman.absorb()  # the deadline fired as the first event arrived


def _watched(seconds: float) -> tuple[Deadlines, asyncio.Task[object]]:
    """The current task, watched for ``seconds``, and its watchman (looked up once per attempt)."""
    watchman = deadlines()
    task = asyncio.current_task()
    assert task is not None
    watchman.watch(task, seconds)
    return watchman, task


def _remaining(request: LLMRequest) -> float:
    remaining = request.deadline - time.perf_counter()
    if remaining <= 0:
        raise _deadline(request)
    return remaining


def _deadline(request: LLMRequest) -> DeadlineExceededError:
    spent = time.perf_counter() - request.started_at
    return DeadlineExceededError(f"the request's deadline passed after {spent:.1f} s of upstream attempts")


def log_failed_attempt(request: LLMRequest, provider: str, error: GatewayError) -> None:
    """One warning per failed upstream attempt, with the request id (never a key: messages are masked)."""
    log.warning(
        "request %s: attempt %d on %s failed: %s %s (%s)",
        request.request_id,
        request.attempts,
        provider,
        error.status,
        error.code or error.type,
        error.message[:300],
    )


def build_upstream(
    request: LLMRequest, runtime: ProviderRuntime, target: Target, *, stream: bool
) -> tuple[UpstreamRequest, bool]:
    """The upstream request: the client's own body if the provider speaks its format, else the core."""
    native = request.native
    if native is not None and runtime.native is not None and request.native_format in runtime.native_formats:
        upstream = runtime.native.native_request(
            request.native_format,
            native,
            target,
            stream=stream,
            extra_tools=request.extra_tools or [],
            client_headers=request.headers,
        )
        return upstream, True
    body = request.core
    if request.extra_tools:
        body = {**body, "tools": [*(body.get("tools") or ()), *request.extra_tools]}
    if request.operation == EMBEDDINGS:
        if runtime.embedder is None:
            raise UnsupportedError(
                f"provider {runtime.name!r} ({runtime.config.type}) does not offer embeddings", param="model"
            )
        return runtime.embedder.embeddings_request(body, target), False
    if request.operation != CHAT:
        raise UnsupportedError(
            f"provider {runtime.name!r} ({runtime.config.type}) cannot serve {request.operation}",
            param="model",
        )
    return runtime.translator.chat_request(body, target, stream=stream), False


def read_reply(
    request: LLMRequest, runtime: ProviderRuntime, target: Target, body: bytes, *, native: bool
) -> Reply:
    if native and runtime.native is not None:
        return runtime.native.native_response(request.native_format, body, target)
    if request.operation == EMBEDDINGS and runtime.embedder is not None:
        return runtime.embedder.embeddings_response(body, target)
    return runtime.translator.chat_response(body, target)


def stream_decoder(
    request: LLMRequest, runtime: ProviderRuntime, target: Target, *, native: bool
) -> StreamDecoder:
    if native and runtime.native is not None and request.native is not None:
        return runtime.native.native_stream_decoder(request.native_format, request.native, target)
    return runtime.translator.stream_decoder(request.core, target)


def pinned_key(runtime: ProviderRuntime, name: str | None) -> ResolvedKey:
    for key in runtime.keys:
        if key.name == name:
            return key
    raise UnsupportedError(f"provider {runtime.name!r} has no key named {name!r}", param="model")


_CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key"})


def _safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Hook-added headers, minus credentials: a plugin pins a key by name, never by value."""
    return {name: value for name, value in headers.items() if name.lower() not in _CREDENTIAL_HEADERS}


async def _first_items(chunks: AsyncIterator[bytes], decoder: StreamDecoder) -> list[StreamItem]:
    """Read until the decoder yields items. An error or EOF before that is an attempt failure."""
    while True:
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            items = decoder.finish()
            if not items and not decoder.failed:
                raise UpstreamProtocolError("upstream closed the stream before sending an event") from None
            return items
        items = decoder.feed(chunk)
        if items or decoder.failed:
            return items


def _before_first(runtime: ProviderRuntime, decoder: StreamDecoder) -> GatewayError:
    """An error the stream reported before anything reached the client: fall back like an HTTP one."""
    error = decoder.error or UpstreamProtocolError("upstream stream failed")
    return masked(runtime, error)


def masked(runtime: ProviderRuntime, error: GatewayError) -> GatewayError:
    """``error`` with any of the provider's key values removed from its message."""
    message = mask_keys(runtime, error.message)
    if message == error.message:
        return error
    return UpstreamError(
        message,
        status=error.status,
        type=error.type,
        code=error.code,
        param=error.param,
        retry_after=error.retry_after,
        trigger=error.trigger,
    )


def mask_keys(runtime: ProviderRuntime, message: str) -> str:
    for key in runtime.keys:
        secret = key.value.reveal()
        if secret in message:
            message = message.replace(secret, "***")
    return message


def upstream_error(
    runtime: ProviderRuntime, status: int, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """The translator's mapping of an upstream error, with any of the provider's keys masked out."""
    mapped = runtime.translator.error(status, body, headers)
    return UpstreamError(
        mask_keys(runtime, mapped.message),
        status=mapped.status,
        type=mapped.type,
        code=mapped.code,
        param=mapped.param,
        retry_after=retry_after_seconds(headers) if mapped.retry_after is None else mapped.retry_after,
        trigger=trigger_for_status(status),
    )
