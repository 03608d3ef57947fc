"""Retries on the same target and typed fallbacks to the next one, through the real gateway.

What clients rely on: a transient upstream failure is retried (Retry-After honoured when it is
short, not waited for when it is long); a failure of the fallback class moves on to the next
target; a client error is never "rescued" by another provider; when everything fails the client
sees the *primary* error; and a stream either falls back before its first byte or ends with an
OpenAI error event, never silently.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from asbru_gateway.config.model import NetworkConfig
from asbru_gateway.errors import (
    GatewayError,
    PoolFullError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeoutError,
)
from asbru_gateway.routing import backoff
from asbru_gateway.routing.backoff import retry_delay
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway

TELEMETRY = {"name": "telemetry", "type": "telemetry", "order": -100}
HELLO = [{"role": "user", "content": "rescue me"}]


# --- helpers ------------------------------------------------------------------------------------


def _provider(name: str, url: str, **network: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "openai",
        "base_url": f"{url}/v1",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_OPENAI_KEY"}],
        "network": {"max_retries": 0, **network},
    }


def _config(providers: list[dict[str, Any]], routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "providers": [{"name": "echo", "type": "echo"}, *providers],
        "routes": routes or [],
        "plugins": [TELEMETRY],
    }


def _closed_port_url() -> str:
    """An address where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _metric(gateway: RunningGateway, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 if none yet)."""
    with httpx.Client() as client:
        text = client.get(gateway.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _chat(gateway: RunningGateway, model: str, **extra: Any) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        return client.post("/v1/chat/completions", json={"model": model, "messages": HELLO, **extra})


def _models_sent(recorder: Recorder) -> list[str]:
    return [item.json["model"] for item in recorder.requests]


def _sse_events(gateway: RunningGateway, body: dict[str, Any]) -> tuple[int, str, list[bytes]]:
    """Status, content type and the raw ``data:`` payloads of a streamed answer, as sent."""
    with (
        httpx.Client(base_url=gateway.url, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response,
    ):
        raw = b"".join(response.iter_raw())
        status, content_type = response.status_code, response.headers.get("content-type", "")
    events = [block.strip() for block in raw.split(b"\n\n") if block.strip()]
    assert all(event.startswith(b"data: ") for event in events), raw
    return status, content_type, [event.removeprefix(b"data: ") for event in events]


def _content(payloads: list[bytes]) -> str:
    text = ""
    for payload in payloads:
        if payload == b"[DONE]":
            continue
        chunk = orjson.loads(payload)
        for choice in chunk.get("choices") or []:
            text += choice["delta"].get("content") or ""
    return text


# --- backoff.retry_delay (unit) -------------------------------------------------------------------


def _error(trigger: str | None = "server_error", retry_after: float | None = None) -> GatewayError:
    return UpstreamError("boom", status=503, trigger=trigger, retry_after=retry_after)


def test_retry_after_within_limit_is_honoured_exactly() -> None:
    network = NetworkConfig(max_retries=3, retry_after_max_s=5, backoff_initial_s=0.01)
    assert retry_delay(_error("rate_limited", 2.5), 0, network) == 2.5
    assert retry_delay(_error("server_error", 5.0), 2, network) == 5.0  # the limit itself is allowed
    assert retry_delay(_error("rate_limited", 0.0), 1, network) == 0.0


def test_retry_after_beyond_limit_is_not_waited_for() -> None:
    network = NetworkConfig(max_retries=3, retry_after_max_s=5)
    assert retry_delay(_error("rate_limited", 5.01), 0, network) is None
    assert retry_delay(_error("server_error", 3600), 0, network) is None


@pytest.mark.parametrize(
    "error",
    [
        _error("bad_request"),
        _error("auth_error"),
        _error(None),
        PoolFullError("full", retry_after=1.0),  # a full pool moves on to a fallback, not back in line
    ],
)
def test_non_retryable_errors_are_not_retried(error: GatewayError) -> None:
    assert retry_delay(error, 0, NetworkConfig(max_retries=5)) is None


@pytest.mark.parametrize(
    "error",
    [
        _error("rate_limited"),
        _error("server_error"),
        UpstreamTimeoutError("t"),
        UpstreamConnectError("c"),
    ],
)
def test_retryable_errors_stop_after_max_retries(error: GatewayError) -> None:
    network = NetworkConfig(max_retries=2, backoff_initial_s=0.01)
    assert retry_delay(error, 0, network) is not None
    assert retry_delay(error, 1, network) is not None
    assert retry_delay(error, 2, network) is None
    assert retry_delay(error, 0, NetworkConfig(max_retries=0)) is None


def test_exponential_backoff_with_equal_jitter_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    network = NetworkConfig(max_retries=10, backoff_initial_s=0.1, backoff_max_s=1.0)
    caps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    for attempt, cap in enumerate(caps):
        delays = [retry_delay(_error(), attempt, network) for _ in range(200)]
        assert all(d is not None and cap / 2 <= d <= cap for d in delays), (attempt, cap)
        assert max(delays) - min(delays) > cap / 8, "jitter spreads retries out"  # type: ignore[operator]
    # The random half is exactly [0, cap/2]: pin it to both ends.
    monkeypatch.setattr(backoff.random, "uniform", lambda low, high: low)
    assert retry_delay(_error(), 3, network) == pytest.approx(0.4)
    monkeypatch.setattr(backoff.random, "uniform", lambda low, high: high)
    assert retry_delay(_error(), 3, network) == pytest.approx(0.8)
    assert retry_delay(_error(), 9, network) == pytest.approx(1.0)


# --- retries through the gateway -------------------------------------------------------------------


def test_flaky_upstream_is_retried_until_it_succeeds(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = _config([_provider("flaky", url, max_retries=2, backoff_initial_s=0.01)])
    with run_gateway(config) as gateway:
        before = _metric(gateway, "asbru_retries_total", provider="flaky")
        response = _chat(gateway, "flaky/flaky-2-503")
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == sc.TEXT
        assert _models_sent(recorder) == ["flaky-2-503"] * 3
        assert _metric(gateway, "asbru_retries_total", provider="flaky") - before == 2


def test_retries_exhausted_gives_the_upstream_error(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_config([_provider("flaky", url, max_retries=1, backoff_initial_s=0.01)])) as gateway:
        response = _chat(gateway, "flaky/flaky-2-503")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "flaky"
    assert len(recorder.requests) == 2


def test_rate_limit_with_retry_after_zero_is_retried(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_config([_provider("openai", url, max_retries=1, backoff_initial_s=30)])) as gateway:
        started = time.monotonic()
        response = _chat(gateway, "openai/flaky-1-429")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert len(recorder.requests) == 2
    # Retry-After: 0 replaces the (huge) exponential backoff: no 15-30 s wait.
    assert elapsed < 10


def test_backoff_waits_between_attempts_without_retry_after(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = _config([_provider("openai", url, max_retries=2, backoff_initial_s=0.2, backoff_max_s=5)])
    with run_gateway(config) as gateway:
        started = time.monotonic()
        response = _chat(gateway, "openai/error-500")  # no Retry-After header: exponential backoff
        elapsed = time.monotonic() - started
    assert response.status_code == 500
    assert len(recorder.requests) == 3
    assert elapsed >= 0.1 + 0.2  # at least half of 0.2, then half of 0.4


def test_client_errors_are_not_retried(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_config([_provider("openai", url, max_retries=3, backoff_initial_s=0.01)])) as gateway:
        assert _chat(gateway, "openai/error-400").status_code == 400
        assert _chat(gateway, "openai/error-401").status_code == 401
    assert _models_sent(recorder) == ["error-400", "error-401"]


@contextmanager
def _retry_after_upstream(retry_after: str) -> Iterator[tuple[str, list[float]]]:
    """An upstream whose first answer is 429 with ``Retry-After: retry_after``, then 200s."""
    arrivals: list[float] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return web.json_response(
                {"error": {"message": "slow down", "type": "rate_limit_error"}},
                status=429,
                headers={"retry-after": retry_after},
            )
        return web.json_response(
            {
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                ],
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    with serve_in_thread(app) as url:
        yield url, arrivals


def test_short_retry_after_is_waited_for() -> None:
    with (
        _retry_after_upstream("0.4") as (url, arrivals),
        run_gateway(
            _config([_provider("openai", url, max_retries=1, backoff_initial_s=0, retry_after_max_s=5)])
        ) as gateway,
    ):
        response = _chat(gateway, "openai/m")
    assert response.status_code == 200
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.4


def test_long_retry_after_falls_back_instead_of_waiting() -> None:
    with (
        _retry_after_upstream("120") as (url, arrivals),
        run_gateway(_config([_provider("openai", url, max_retries=3, retry_after_max_s=1)])) as gateway,
    ):
        started = time.monotonic()
        response = _chat(gateway, "openai/m", fallbacks=["echo/x"])
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "rescue me"
    assert len(arrivals) == 1, "a 120 s Retry-After is not retried on the same target"
    assert elapsed < 10


# --- fallbacks --------------------------------------------------------------------------------------


def _two_provider_route(
    url: str, primary_model: str, fallback_model: str = "gpt-4o", **route: Any
) -> dict[str, Any]:
    return _config(
        [_provider("prov-a", url), _provider("prov-b", url)],
        [
            {
                "name": "smart",
                "targets": [
                    {"provider": "prov-a", "model": primary_model, "priority": 0},
                    {"provider": "prov-b", "model": fallback_model, "priority": 1},
                ],
                **route,
            }
        ],
    )


def test_server_error_falls_back_to_next_provider(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_two_provider_route(url, "error-500")) as gateway:
        before = _metric(gateway, "asbru_fallbacks_total", provider="prov-a")
        response = _chat(gateway, "smart")
        assert response.status_code == 200, response.text
        assert response.json()["model"] == "gpt-4o"
        assert response.json()["choices"][0]["message"]["content"] == sc.TEXT
        assert _models_sent(recorder) == ["error-500", "gpt-4o"]
        assert _metric(gateway, "asbru_fallbacks_total", provider="prov-a") - before == 1
        served = _metric(gateway, "asbru_requests_total", provider="prov-b", status="200")
        assert served >= 1


def test_bad_request_is_not_rescued_by_a_fallback(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_two_provider_route(url, "error-400")) as gateway:
        response = _chat(gateway, "smart")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == sc.ERROR_MESSAGE
    assert _models_sent(recorder) == ["error-400"]


def test_route_fallback_triggers_are_respected(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    narrow = _two_provider_route(url, "error-500", fallback_on=["rate_limited"])
    with run_gateway(narrow) as gateway:
        assert _chat(gateway, "smart").status_code == 500
    assert _models_sent(recorder) == ["error-500"]
    recorder.requests.clear()
    wide = _two_provider_route(url, "error-400", fallback_on=["bad_request"])
    with run_gateway(wide) as gateway:
        assert _chat(gateway, "smart").status_code == 200
    assert _models_sent(recorder) == ["error-400", "gpt-4o"]


def test_when_all_fail_the_client_gets_the_primary_error(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = _config(
        [_provider("prov-a", url), _provider("dead", _closed_port_url())],
        [
            {
                "name": "primary-http",
                "targets": [
                    {"provider": "prov-a", "model": "error-503", "priority": 0},
                    {"provider": "dead", "model": "m", "priority": 1},
                ],
            },
            {
                "name": "primary-dead",
                "targets": [
                    {"provider": "dead", "model": "m", "priority": 0},
                    {"provider": "prov-a", "model": "error-500", "priority": 1},
                ],
            },
        ],
    )
    with run_gateway(config) as gateway:
        first = _chat(gateway, "primary-http")
        second = _chat(gateway, "primary-dead")
    assert first.status_code == 503
    assert first.json()["error"]["message"] == sc.ERROR_MESSAGE
    assert first.json()["error"]["type"] == "server_error"
    assert second.status_code == 502
    assert second.json()["error"]["code"] == "upstream_unreachable"
    assert _models_sent(recorder) == ["error-503", "error-500"], "both targets were tried"


def test_request_fallbacks_rescue_a_failing_model(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_config([_provider("openai", url)])) as gateway:
        response = _chat(gateway, "openai/error-500", fallbacks=["echo/x"])
        unknown = _chat(gateway, "openai/error-500", fallbacks=["nowhere/x"])
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "rescue me"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "fallbacks[0]"
    # The fallbacks field is the gateway's, never forwarded upstream; the unknown one never left.
    assert len(recorder.requests) == 1
    assert "fallbacks" not in recorder.requests[0].json


def test_connect_error_falls_back() -> None:
    config = _config(
        [_provider("dead", _closed_port_url())],
        [
            {
                "name": "r",
                "targets": [
                    {"provider": "dead", "model": "m", "priority": 0},
                    {"provider": "echo", "model": "e", "priority": 1},
                ],
            }
        ],
    )
    with run_gateway(config) as gateway:
        response = _chat(gateway, "r")
        alone = _chat(gateway, "dead/m")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "rescue me"
    assert alone.status_code == 502
    assert alone.json()["error"]["type"] == "api_connection_error"


def test_timeout_falls_back(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = _config(
        [_provider("sleepy", url, request_timeout_s=0.3)],
        [
            {
                "name": "r",
                "targets": [
                    {"provider": "sleepy", "model": "hang", "priority": 0},
                    {"provider": "echo", "model": "e", "priority": 1},
                ],
            }
        ],
    )
    with run_gateway(config) as gateway:
        started = time.monotonic()
        response = _chat(gateway, "r")
        elapsed = time.monotonic() - started
        alone = _chat(gateway, "sleepy/hang")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "rescue me"
    assert 0.3 <= elapsed < 10
    assert alone.status_code == 504
    assert alone.json()["error"]["code"] == "upstream_timeout"
    assert _models_sent(recorder) == ["hang", "hang"]


# --- streams ----------------------------------------------------------------------------------------


def test_stream_error_before_first_byte_falls_back(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = _config(
        [_provider("openai", url)],
        [
            {
                "name": "r",
                "targets": [
                    {"provider": "openai", "model": "error-500", "priority": 0},
                    {"provider": "echo", "model": "e", "priority": 1},
                ],
            }
        ],
    )
    with run_gateway(config) as gateway:
        status, content_type, payloads = _sse_events(gateway, {"model": "r", "messages": HELLO})
    assert status == 200
    assert content_type.startswith("text/event-stream")
    assert payloads[-1] == b"[DONE]"
    assert not any(p.startswith(b'{"error"') for p in payloads)
    assert _content(payloads) == "rescue me"
    assert _models_sent(recorder) == ["error-500"]


def test_stream_failure_after_first_byte_ends_with_error_event(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    with run_gateway(_config([_provider("openai", url)])) as gateway:
        status, _, payloads = _sse_events(
            gateway, {"model": "openai/die-midstream", "messages": HELLO, "fallbacks": ["echo/x"]}
        )
    assert status == 200
    # What was relayed stays relayed; then an OpenAI error event, and no [DONE]: never a silent end.
    assert _content(payloads[:-1]) == sc.STREAM_PIECES[0]
    assert b"[DONE]" not in payloads
    last = orjson.loads(payloads[-1])
    assert set(last) == {"error"}
    assert last["error"]["message"] and last["error"]["type"]
    # Once bytes reached the client a fallback would duplicate output: the echo was never used.
    assert "rescue me" not in _content(payloads[:-1])
    assert len(recorder.requests) == 1
