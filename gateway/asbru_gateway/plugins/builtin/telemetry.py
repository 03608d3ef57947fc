"""Prometheus telemetry: requests, errors, latencies, tokens.

Runs as a plugin so that it obeys the same contract as any other (and can be ordered or turned
off), but it only *reads* what routing and the stream relay recorded on the request, and it does so
in ``on_complete``, after the response's last byte: metrics never delay a client. Stream timings
are recorded by the relay itself, so this plugin needs no per-chunk hook. Order it first (lowest
``order``) so that its completion hook sees every request, short-circuited ones included. Retries
and fallbacks are counted by routing, where it knows which provider was retried or left.

Cost matters here: the per-request families are lock-free cells (``observability.hot_metrics``),
resolved once per label set and kept (the label sets are bounded: configured providers x
``bounded_model`` x statuses).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from asbru_gateway.core.request import LLMRequest
from asbru_gateway.observability import metrics
from asbru_gateway.plugins.base import Outcome, PluginBase


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_timings: bool = True
    """Record time to first token and inter-token latency of streams."""


class _Series:
    """The metric children of one provider/model pair."""

    __slots__ = ("input_tokens", "inter_token", "output_tokens", "requests", "time_to_first", "upstream")

    def __init__(self, provider: str, model: str) -> None:
        self.requests: dict[int, list[float]] = {}
        self.upstream = metrics.UPSTREAM_LATENCY.cell(provider, model)
        self.time_to_first = metrics.TIME_TO_FIRST_TOKEN.cell(provider, model)
        self.inter_token = metrics.INTER_TOKEN_LATENCY.cell(provider, model)
        self.input_tokens = metrics.TOKENS.cell(provider, model, "input")
        self.output_tokens = metrics.TOKENS.cell(provider, model, "output")


class TelemetryPlugin(PluginBase):
    Settings = TelemetrySettings

    def __init__(self, name: str, settings: BaseModel) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, TelemetrySettings)
        self._streams = settings.stream_timings
        self._series: dict[tuple[str, str], _Series] = {}

    def _of(self, provider: str, model: str) -> _Series:
        series = self._series.get((provider, model))
        if series is None:
            series = self._series[(provider, model)] = _Series(provider, model)
        return series

    async def on_complete(self, request: LLMRequest, outcome: Outcome) -> None:
        provider = request.provider or ""
        # Model labels come from configured names only (``RouteTable.model_label``): a name a client
        # chose (``provider/anything``, an unknown model) is "other" or empty, never a new series.
        model = metrics.bounded_model(request.metric_model) if request.provider else ""
        series = self._of(provider, model)
        status = outcome.status
        requests = series.requests.get(status)
        if requests is None:
            requests = series.requests[status] = metrics.REQUESTS.cell(provider, model, str(status))
        requests[0] += 1
        error = outcome.error if outcome.error is not None else getattr(outcome.stream, "error", None)
        if error is not None:
            metrics.ERRORS.cell(provider, model, str(status), error.type)[0] += 1
        if request.upstream_latency_s is not None:
            series.upstream.observe(request.upstream_latency_s)
        usage = request.usage
        if usage is not None:
            series.input_tokens[0] += usage.prompt_tokens
            series.output_tokens[0] += usage.completion_tokens
        if self._streams and request.first_token_at is not None:
            series.time_to_first.observe(request.first_token_at - request.started_at)
            if request.events_sent > 1 and request.last_event_at is not None:
                gap = (request.last_event_at - request.first_token_at) / (request.events_sent - 1)
                series.inter_token.observe(gap)
