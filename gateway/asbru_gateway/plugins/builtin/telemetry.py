"""Prometheus telemetry: requests, errors, latencies, tokens, retries and fallbacks.

Runs as a plugin so that it obeys the same contract as any other (and can be ordered or turned
off), but it only *reads* the request context that routing and the stream relay filled in
(stream timings are recorded by the relay itself, so this plugin needs no per-event hook).
It should be ordered first (lowest ``order``) so that its post-hook sees every request,
short-circuited ones included.

Cost matters here: ``Counter.labels(...)`` takes ~2 us (a lock and a dict), so the label children
are resolved once per label set and kept (the label sets are bounded: configured providers x
``bounded_model`` x statuses).
"""

from __future__ import annotations

from typing import Any

from asbru_gateway.observability import metrics
from asbru_gateway.plugins.base import Outcome, RequestContext


class _Series:
    """The metric children of one provider/model pair."""

    __slots__ = ("input_tokens", "inter_token", "output_tokens", "requests", "time_to_first", "upstream")

    def __init__(self, provider: str, model: str) -> None:
        self.requests: dict[int, Any] = {}
        self.upstream = metrics.UPSTREAM_LATENCY.labels(provider, model)
        self.time_to_first = metrics.TIME_TO_FIRST_TOKEN.labels(provider, model)
        self.inter_token = metrics.INTER_TOKEN_LATENCY.labels(provider, model)
        self.input_tokens = metrics.TOKENS.labels(provider, model, "input")
        self.output_tokens = metrics.TOKENS.labels(provider, model, "output")


class TelemetryPlugin:
    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self._streams = bool(settings.get("stream_timings", True))
        self._series: dict[tuple[str, str], _Series] = {}

    def _of(self, provider: str, model: str) -> _Series:
        series = self._series.get((provider, model))
        if series is None:
            series = self._series[(provider, model)] = _Series(provider, model)
        return series

    async def post_response(self, ctx: RequestContext, outcome: Outcome) -> Outcome | None:
        provider = ctx.provider or ""
        # A request that never reached a provider (unknown model, bad input) gets no model label:
        # its model name is whatever the client typed.
        model = metrics.bounded_model(ctx.model) if ctx.provider else ""
        series = self._of(provider, model)
        status = outcome.status
        requests = series.requests.get(status)
        if requests is None:
            requests = series.requests[status] = metrics.REQUESTS.labels(provider, model, str(status))
        requests.inc()
        if outcome.error is not None:
            metrics.ERRORS.labels(provider, model, str(status), outcome.error.type).inc()
        if ctx.retries:
            metrics.RETRIES.labels(provider).inc(ctx.retries)
        if ctx.upstream_latency_s is not None:
            series.upstream.observe(ctx.upstream_latency_s)
        if ctx.usage is not None:
            series.input_tokens.inc(ctx.usage.prompt_tokens)
            series.output_tokens.inc(ctx.usage.completion_tokens)
        if self._streams and ctx.first_token_at is not None:
            series.time_to_first.observe(ctx.first_token_at - ctx.started_at)
            if ctx.events_sent > 1 and ctx.last_event_at is not None:
                gap = (ctx.last_event_at - ctx.first_token_at) / (ctx.events_sent - 1)
                series.inter_token.observe(gap)
        return None
