"""The plugin pipeline contract (see ``asbru_gateway.plugins.pipeline``), hook by hook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asbru_gateway.errors import GatewayError
from asbru_gateway.observability.metrics import PLUGIN_ERRORS
from asbru_gateway.plugins.base import Outcome, RequestContext, ShortCircuit
from asbru_gateway.plugins.builtin import registry
from asbru_gateway.plugins.pipeline import Pipeline
from tests.gateway_server import RunningGateway, run_gateway


class Recording:
    """A plugin with every hook, recording calls into a shared journal; behaviour set by settings."""

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = settings
        self.journal: list[str] = settings["journal"]

    async def pre_request(self, ctx: RequestContext) -> ShortCircuit | None:
        self.journal.append(f"pre:{self.name}")
        action = self.settings.get("pre")
        if action == "raise":
            raise RuntimeError("plugin bug")
        if action == "deny":
            raise GatewayError("denied by policy", status=403, type="permission_error", code="denied")
        if action == "answer":
            return ShortCircuit(Outcome(200, b'{"cached":true}'))
        return None

    async def post_response(self, ctx: RequestContext, outcome: Outcome) -> Outcome | None:
        self.journal.append(f"post:{self.name}")
        if self.settings.get("post") == "raise":
            raise RuntimeError("plugin bug")
        if self.settings.get("post") == "tag":
            return Outcome(outcome.status, outcome.body, outcome.error, [*outcome.headers, (b"x-tag", b"1")])
        return None

    def on_chunk(self, ctx: RequestContext, event: bytes) -> bytes | None:
        self.journal.append(f"chunk:{self.name}")
        if self.settings.get("chunk") == "raise":
            raise RuntimeError("plugin bug")
        if self.settings.get("chunk") == "upper" and b"[DONE]" not in event:
            return event.replace(b"hello", b"HELLO")
        return None


class PreOnly:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    async def pre_request(self, ctx: RequestContext) -> ShortCircuit | None:
        self.journal.append(f"pre:{self.name}")
        return None


def _ctx() -> RequestContext:
    return RequestContext(request_id="r", endpoint="chat", body={"model": "m"}, stream=False)


async def test_pre_in_order_post_in_reverse() -> None:
    journal: list[str] = []
    pipeline = Pipeline([Recording(n, {"journal": journal}) for n in ("a", "b", "c")])
    reached, short = await pipeline.pre(_ctx())
    assert (reached, short) == (3, None)
    await pipeline.post(_ctx(), Outcome(200), reached)
    assert journal == ["pre:a", "pre:b", "pre:c", "post:c", "post:b", "post:a"]


async def test_short_circuit_skips_later_plugins_and_their_post_hooks() -> None:
    journal: list[str] = []
    plugins = [
        Recording("a", {"journal": journal}),
        Recording("b", {"journal": journal, "pre": "answer"}),
        Recording("c", {"journal": journal}),
    ]
    pipeline = Pipeline(plugins)
    reached, short = await pipeline.pre(_ctx())
    assert short is not None and short.outcome.body == b'{"cached":true}'
    await pipeline.post(_ctx(), short.outcome, reached)
    assert journal == ["pre:a", "pre:b", "post:b", "post:a"]


async def test_error_short_circuit() -> None:
    journal: list[str] = []
    pipeline = Pipeline(
        [Recording("a", {"journal": journal, "pre": "deny"}), Recording("b", {"journal": journal})]
    )
    reached, short = await pipeline.pre(_ctx())
    assert reached == 1 and short is not None and short.outcome.status == 403
    assert short.outcome.error is not None and short.outcome.error.code == "denied"


async def test_plugin_exceptions_are_swallowed_and_counted() -> None:
    journal: list[str] = []
    plugin = Recording("buggy", {"journal": journal, "pre": "raise", "post": "raise", "chunk": "raise"})
    pipeline = Pipeline([plugin, Recording("ok", {"journal": journal})])
    reached, short = await pipeline.pre(_ctx())
    assert (reached, short) == (2, None)
    assert pipeline.chunk(_ctx(), b"data: x\n\n") == b"data: x\n\n"
    outcome = await pipeline.post(_ctx(), Outcome(200, b"body"), reached)
    assert outcome.body == b"body"
    assert PLUGIN_ERRORS.labels("buggy")._value.get() >= 3


async def test_hooks_are_detected_once_and_missing_ones_cost_nothing() -> None:
    journal: list[str] = []
    pipeline = Pipeline([PreOnly("p", journal)])
    assert not pipeline.has_chunk_hooks
    reached, _ = await pipeline.pre(_ctx())
    assert await pipeline.post(_ctx(), Outcome(204), reached) == Outcome(204)
    assert journal == ["pre:p"]


@pytest.fixture
def gateway_with_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningGateway, list[str]]]:
    journal: list[str] = []
    monkeypatch.setitem(registry.PLUGIN_TYPES, "recording", Recording)
    config = {
        "providers": [{"name": "echo", "type": "echo"}],
        "plugins": [
            {
                "name": "first",
                "type": "recording",
                "order": 1,
                "settings": {"journal": journal, "post": "tag"},
            },
            {
                "name": "second",
                "type": "recording",
                "order": 2,
                "settings": {"journal": journal, "chunk": "upper", "pre": "raise"},
            },
            {
                "name": "off",
                "type": "recording",
                "order": 3,
                "enabled": False,
                "settings": {"journal": journal},
            },
        ],
    }
    with run_gateway(config) as running:
        yield running, journal


def test_plugins_over_http(gateway_with_plugins: tuple[RunningGateway, list[str]]) -> None:
    gateway, journal = gateway_with_plugins
    body = {"model": "echo/x", "messages": [{"role": "user", "content": "hello there"}]}
    with httpx.Client(base_url=gateway.url) as client:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200  # the buggy pre-hook did not reach the client
        assert response.headers["x-tag"] == "1"  # a post-hook may replace the outcome
        assert journal == ["pre:first", "pre:second", "post:second", "post:first"]
        journal.clear()
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as stream:
            text = "".join(stream.iter_text())
    assert "HELLO" in text and "hello" not in text  # chunk hook rewrote the events
    assert journal[:2] == ["pre:first", "pre:second"] and journal[-2:] == ["post:second", "post:first"]
    assert "chunk:first" in journal and "pre:off" not in journal


def test_stream_timings_reach_the_telemetry_histograms() -> None:
    config = {
        "providers": [{"name": "echo", "type": "echo", "options": {"chunk_delay_ms": 1}}],
        "plugins": [{"name": "telemetry", "type": "telemetry"}],
    }
    body = {"model": "echo/ttft-probe", "stream": True, "messages": [{"role": "user", "content": "a b c d"}]}
    with run_gateway(config) as gateway, httpx.Client(base_url=gateway.url) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.read().endswith(b"data: [DONE]\n\n")
        metrics = client.get("/metrics").text
    labels = 'model="ttft-probe",provider="echo"'
    assert f"asbru_time_to_first_token_seconds_count{{{labels}}} 1.0" in metrics
    assert f"asbru_inter_token_latency_seconds_count{{{labels}}} 1.0" in metrics
