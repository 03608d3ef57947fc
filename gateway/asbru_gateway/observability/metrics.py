"""Every Prometheus metric of the gateway, on one registry (not the client library's global one).

Labels stay bounded: provider (from config), model (capped by ``bounded_model``), status, plugin,
trigger. Never a key, a request id or a user string beyond the cap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from asbru_gateway.observability.hot_metrics import HotCollector, HotCounter, HotHistogram

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the scrape size and tell nobody anything
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

# Touched by every request: lock-free cells, exposed at scrape time (``hot_metrics``).
REQUESTS = HotCounter(
    "asbru_requests",
    "Client requests answered, by serving provider, model and HTTP status.",
    ["provider", "model", "status"],
)
ERRORS = HotCounter(
    "asbru_errors",
    "Client requests answered with an error, by status and error type.",
    ["provider", "model", "status", "type"],
)
UPSTREAM_LATENCY = HotHistogram(
    "asbru_upstream_latency_seconds",
    "Upstream time of the successful attempt: to the full body, or to the first event of a stream.",
    ["provider", "model"],
    _LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = HotHistogram(
    "asbru_time_to_first_token_seconds",
    "Streams: client request received to first event sent.",
    ["provider", "model"],
    _LATENCY_BUCKETS,
)
INTER_TOKEN_LATENCY = HotHistogram(
    "asbru_inter_token_latency_seconds",
    "Streams: mean gap between consecutive events of a stream.",
    ["provider", "model"],
    _TOKEN_GAP_BUCKETS,
)
TOKENS = HotCounter(
    "asbru_tokens",
    "Tokens reported by upstreams, by direction (input or output).",
    ["provider", "model", "direction"],
)
REGISTRY.register(
    HotCollector([REQUESTS, ERRORS, UPSTREAM_LATENCY, TIME_TO_FIRST_TOKEN, INTER_TOKEN_LATENCY, TOKENS])
)
RETRIES = Counter(
    "asbru_retries", "Upstream attempts retried on the same target.", ["provider"], registry=REGISTRY
)
FALLBACKS = Counter(
    "asbru_fallbacks",
    "Requests moved to a fallback target, by the target left.",
    ["provider"],
    registry=REGISTRY,
)
PLUGIN_ERRORS = Counter(
    "asbru_plugin_errors",
    "Plugin hook exceptions (never shown to clients), by plugin and hook.",
    ["plugin", "hook"],
    registry=REGISTRY,
)
CONFIG_RELOADS = Counter(
    "asbru_config_reloads", "Config applications, by result.", ["result"], registry=REGISTRY
)
CONFIG_INFO = Gauge(
    "asbru_config_revision_info", "1 for the config revision being served.", ["revision"], registry=REGISTRY
)
MCP_TOOL_CALLS = Counter(
    "asbru_mcp_tool_calls",
    "MCP tool calls the gateway ran, by server, tool and outcome (ok, tool_error, timeout, unavailable, "
    "error, denied).",
    ["server", "tool", "outcome"],
    registry=REGISTRY,
)
MCP_TOOL_LATENCY = Histogram(
    "asbru_mcp_tool_call_seconds",
    "MCP tool call latency, by server and tool.",
    ["server", "tool"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
MCP_SERVER_UP = Gauge(
    "asbru_mcp_server_connected", "1 while the MCP server's connection is up.", ["server"], registry=REGISTRY
)
MCP_SERVER_TOOLS = Gauge(
    "asbru_mcp_server_tools", "Tools the MCP server lists.", ["server"], registry=REGISTRY
)

_MAX_MODEL_LABELS = 500
_models_seen: set[str] = set()
_models_lock = threading.Lock()


def bounded_model(model: str | None) -> str:
    """The model as a label value; past ``_MAX_MODEL_LABELS`` distinct names, new ones are 'other'."""
    if not model:
        return ""
    if model in _models_seen:
        return model
    with _models_lock:
        if len(_models_seen) >= _MAX_MODEL_LABELS:
            return "other"
        _models_seen.add(model)
    return model


def set_revision(revision: str) -> None:
    CONFIG_INFO.clear()
    CONFIG_INFO.labels(revision).set(1)


@dataclass(frozen=True, slots=True)
class PoolStats:
    provider: str
    in_flight: int
    queued: int
    concurrency: int
    queue_size: int
    rejected: int


class PoolCollector(Collector):
    """Pool gauges read at scrape time: zero cost on the request path."""

    def __init__(self, snapshot: Callable[[], Iterable[PoolStats]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        in_flight = GaugeMetricFamily(
            "asbru_pool_in_flight", "Upstream calls holding a slot.", labels=["provider"]
        )
        queued = GaugeMetricFamily(
            "asbru_pool_queue_depth", "Requests waiting for a slot.", labels=["provider"]
        )
        limit = GaugeMetricFamily("asbru_pool_concurrency_limit", "Slots of the pool.", labels=["provider"])
        capacity = GaugeMetricFamily(
            "asbru_pool_queue_capacity", "Queue size of the pool.", labels=["provider"]
        )
        rejected = CounterMetricFamily(
            "asbru_pool_rejections", "Requests refused by a full pool.", labels=["provider"]
        )
        for stats in self._snapshot():
            in_flight.add_metric([stats.provider], stats.in_flight)
            queued.add_metric([stats.provider], stats.queued)
            limit.add_metric([stats.provider], stats.concurrency)
            capacity.add_metric([stats.provider], stats.queue_size)
            rejected.add_metric([stats.provider], stats.rejected)
        return [in_flight, queued, limit, capacity, rejected]

    def describe(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        return []
