"""Prometheus telemetry: requests, errors, latencies, tokens, retries and fallbacks.

Runs as a plugin so that it obeys the same contract as any other (and can be ordered or turned
off), but it only *reads* the request context that routing filled in. It should be ordered first
(lowest ``order``) so that its post-hook sees every request, short-circuited ones included.
Per request it costs a handful of counter increments on pre-resolved label children.
"""

from __future__ import annotations

import time
from typing import Any

from asbru_gateway.observability import metrics
from asbru_gateway.plugins.base import Outcome, RequestContext


class TelemetryPlugin:
    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self._streams = bool(settings.get("stream_timings", True))

    def on_chunk(self, ctx: RequestContext, event: bytes) -> bytes | None:
        if not self._streams:
            return None
        now = time.perf_counter()
        if ctx.first_token_at is None:
            ctx.first_token_at = now
        ctx.last_chunk_at = now
        ctx.chunk_times += 1
        return None

    async def post_response(self, ctx: RequestContext, outcome: Outcome) -> Outcome | None:
        provider = ctx.provider or ""
        # A request that never reached a provider (unknown model, bad input) gets no model label:
        # its model name is whatever the client typed.
        model = metrics.bounded_model(ctx.model) if ctx.provider else ""
        status = str(outcome.status)
        metrics.REQUESTS.labels(provider, model, status).inc()
        if outcome.error is not None:
            metrics.ERRORS.labels(provider, model, status, outcome.error.type).inc()
        if ctx.retries:
            metrics.RETRIES.labels(provider).inc(ctx.retries)
        if ctx.upstream_latency_s is not None:
            metrics.UPSTREAM_LATENCY.labels(provider, model).observe(ctx.upstream_latency_s)
        if ctx.usage is not None:
            metrics.TOKENS.labels(provider, model, "input").inc(ctx.usage.prompt_tokens)
            metrics.TOKENS.labels(provider, model, "output").inc(ctx.usage.completion_tokens)
        if ctx.first_token_at is not None:
            metrics.TIME_TO_FIRST_TOKEN.labels(provider, model).observe(ctx.first_token_at - ctx.started_at)
            if ctx.chunk_times > 1 and ctx.last_chunk_at is not None:
                gap = (ctx.last_chunk_at - ctx.first_token_at) / (ctx.chunk_times - 1)
                metrics.INTER_TOKEN_LATENCY.labels(provider, model).observe(gap)
        return None
