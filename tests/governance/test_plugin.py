"""The governance plugin in a real gateway, through each dialect's own SDK (in-process counters)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asbru_gateway.governance.shared_store import SharedStore
from tests.gateway_server import RunningGateway, run_gateway
from tests.governance.clients import DIALECTS, call, raw_chat

LIMITED = "vk-limited-0123456789abcdef"
BUDGET = "vk-budget-0123456789abcdef"
CHEAP = "vk-cheap-0123456789abcdef"
KEYS = {"VK_LIMITED": LIMITED, "VK_BUDGET": BUDGET, "VK_CHEAP": CHEAP}


def config(**governance: Any) -> dict[str, Any]:
    return {
        "providers": [{"name": "echo", "type": "echo"}, {"name": "other", "type": "echo"}],
        "routes": [{"name": "chat", "targets": [{"provider": "echo", "model": "m"}]}],
        "governance": {
            "require_virtual_key": True,
            "virtual_keys": [
                {
                    "name": "limited",
                    "secret": "env:VK_LIMITED",
                    "allowed": {"models": ["echo/*", "chat"]},
                    "rate_limits": {"requests_per_minute": 10},
                },
                {"name": "budget", "secret": "env:VK_BUDGET", "budgets": [{"period": "day", "tokens": 200}]},
                {
                    "name": "cheap",
                    "secret": "env:VK_CHEAP",
                    "team": "eng",
                    "budgets": [{"period": "month", "usd": 0.02}],
                },
            ],
            "teams": [{"name": "eng", "rate_limits": {"requests_per_day": 1000}}],
            "prices": [{"provider": "echo", "input_per_mtok": 1000, "output_per_mtok": 1000}],
            **governance,
        },
    }


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def gateway(keys: None) -> Iterator[RunningGateway]:
    with run_gateway(config()) as running:
        yield running


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_request_without_a_valid_key_is_401_in_its_dialect(gateway: RunningGateway, dialect: str) -> None:
    result = call(dialect, gateway.url, "not-a-key-at-all")
    assert result.status == 401
    assert "not valid" in result.text
    assert "not-a-key-at-all" not in result.text


def test_missing_key_is_401(gateway: RunningGateway) -> None:
    response = raw_chat(gateway.url, {})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"authorization": f"Bearer {LIMITED}"}, ""),
        ({"x-api-key": LIMITED}, ""),
        ({"x-goog-api-key": LIMITED}, ""),
        ({}, f"?key={LIMITED}"),
        ({"x-bf-vk": LIMITED, "authorization": "Bearer provider-key-the-client-also-sent"}, ""),
    ],
)
def test_the_key_is_read_wherever_the_sdk_puts_it(
    gateway: RunningGateway, headers: dict[str, str], query: str
) -> None:
    response = raw_chat(gateway.url, headers, query=query)
    assert response.status_code == 200, response.text
    assert response.headers["ratelimit-policy"] == '"key-requests-minute";q=10;w=60'
    assert response.headers["ratelimit"] == '"key-requests-minute";r=9;t=60'


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_model_the_key_may_not_use_is_403_naming_the_model(gateway: RunningGateway, dialect: str) -> None:
    result = call(dialect, gateway.url, LIMITED, model="other/secret-model")
    assert result.status == 403
    assert "other/secret-model" in result.text
    assert LIMITED not in result.text


def test_fallbacks_are_checked_too(gateway: RunningGateway) -> None:
    body = {"model": "chat", "fallbacks": ["other/x"], "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers={"x-api-key": LIMITED})
    assert response.status_code == 403
    assert "'other/x'" in response.json()["error"]["message"]


def test_exactly_the_rate_limit_passes_across_dialects_and_streams(gateway: RunningGateway) -> None:
    results = [call(DIALECTS[i % 3], gateway.url, LIMITED, stream=i % 2 == 1) for i in range(16)]
    assert [r.status for r in results].count(200) == 10
    assert [r.status for r in results[10:]] == [429] * 6
    refused = raw_chat(gateway.url, {"authorization": f"Bearer {LIMITED}"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 55 <= int(refused.headers["retry-after"]) <= 61
    assert refused.headers["ratelimit"] == '"key-requests-minute";r=0;t=60'


def test_a_stream_carries_the_ratelimit_headers(gateway: RunningGateway) -> None:
    body = {"model": "echo/x", "stream": True, "messages": [{"role": "user", "content": "one two"}]}
    with httpx.stream(
        "POST", gateway.url + "/v1/chat/completions", json=body, headers={"x-api-key": BUDGET}
    ) as r:
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"key-tokens-day-c";q=200;w=86400;qu="tokens"'
        assert r.headers["ratelimit"].startswith('"key-tokens-day-c";r=')
        r.read()


def _used(gateway: RunningGateway, key: str) -> list[int]:
    plugin: Any = gateway.app.gateway.current.plugins.instances["governance"][1]  # type: ignore[union-attr]
    entry = plugin.compiled.keys.entries[key]
    return gateway.call(plugin.store.usage(entry.limits, plugin._clock()))  # type: ignore[no-any-return]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_token_budget_is_never_exceeded(gateway: RunningGateway, dialect: str) -> None:
    served = 0
    for _ in range(100):
        result = call(dialect, gateway.url, BUDGET, text="one two three four five", stream=served % 2 == 1)
        if result.status != 200:
            assert result.status == 429
            assert "budget exceeded: 200 tokens per day" in result.text
            break
        served += 1
    (used,) = _used(gateway, "budget")
    assert used == served * 10  # echo: one token per word, prompt and answer
    assert (
        200 - 100 < used <= 200
    )  # refused only once a reservation (prompt estimate + max_tokens) no longer fits


def _metric(url: str, line_start: str) -> float:
    """A metric's value from /metrics (0 before its first sample): the registry is the process's."""
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_usd_budget_cost_header_and_metrics(gateway: RunningGateway) -> None:
    key_cost = 'asbru_virtual_key_cost_usd_total{team="eng",virtual_key="cheap"}'
    before = _metric(gateway.url, key_cost)
    costs = []
    for _ in range(10):
        response = raw_chat(gateway.url, {"x-api-key": CHEAP})
        if response.status_code != 200:
            assert response.status_code == 429
            assert response.json()["error"]["code"] == "budget_exceeded"
            break
        costs.append(response.headers["x-asbru-cost"])
    assert costs and set(costs) == {"0.004000"}  # 4 tokens at $1,000 per million
    assert _used(gateway, "cheap")[0] == 4000 * len(costs)  # micro-dollars
    assert _metric(gateway.url, key_cost) - before == pytest.approx(0.004 * len(costs))
    assert _metric(gateway.url, 'asbru_cost_usd_total{model="other",provider="echo"}') > 0


def test_expired_and_disabled_keys_are_401(keys: None) -> None:
    settings = config()
    vks = settings["governance"]["virtual_keys"]
    vks[0] = {**vks[0], "expires_at": "2001-01-01T00:00:00Z"}
    vks[1] = {**vks[1], "disabled": True}
    with run_gateway(settings) as gateway:
        expired = raw_chat(gateway.url, {"x-api-key": LIMITED})
        assert expired.status_code == 401
        assert "expired" in expired.json()["error"]["message"]
        disabled = raw_chat(gateway.url, {"x-api-key": BUDGET})
        assert disabled.status_code == 401
        assert "disabled" in disabled.json()["error"]["message"]


def test_without_require_an_unknown_bearer_is_anonymous_but_an_unknown_vk_header_is_not(keys: None) -> None:
    with run_gateway(config(require_virtual_key=False)) as gateway:
        assert raw_chat(gateway.url, {"authorization": "Bearer whatever"}).status_code == 200
        assert raw_chat(gateway.url, {}).status_code == 200
        assert raw_chat(gateway.url, {"x-bf-vk": "whatever"}).status_code == 401


def test_a_reload_keeps_the_store_and_the_counts(gateway: RunningGateway) -> None:
    for _ in range(3):
        assert raw_chat(gateway.url, {"x-api-key": LIMITED}).status_code == 200
    before: Any = gateway.app.gateway.current.plugins.instances["governance"][1]  # type: ignore[union-attr]
    changed = config()
    changed["governance"]["virtual_keys"][0]["rate_limits"]["requests_per_minute"] = 4
    gateway.apply(changed)
    after: Any = gateway.app.gateway.current.plugins.instances["governance"][1]  # type: ignore[union-attr]
    assert after is not before
    assert isinstance(after.shared, SharedStore)
    assert after.shared is before.shared
    assert raw_chat(gateway.url, {"x-api-key": LIMITED}).status_code == 200
    assert raw_chat(gateway.url, {"x-api-key": LIMITED}).status_code == 429


def test_a_rotated_key_file_takes_effect_and_keeps_the_counts(tmp_path: Path, keys: None) -> None:
    secret = tmp_path / "vk"
    secret.write_text("vk-first-value-0123456789\n")
    settings = config()
    settings["governance"]["virtual_keys"][0]["secret"] = f"file:{secret}"
    with run_gateway(settings) as gateway:
        for _ in range(4):
            assert raw_chat(gateway.url, {"x-api-key": "vk-first-value-0123456789"}).status_code == 200
        secret.write_text("vk-second-value-0123456789\n")
        gateway.apply(settings)
        assert raw_chat(gateway.url, {"x-api-key": "vk-first-value-0123456789"}).status_code == 401
        response = raw_chat(gateway.url, {"x-api-key": "vk-second-value-0123456789"})
        assert response.status_code == 200
        assert response.headers["ratelimit"] == '"key-requests-minute";r=5;t=60'


def test_provider_budgets_fall_back_to_the_next_target(keys: None) -> None:
    settings = config(provider_budgets=[{"provider": "echo", "budgets": [{"period": "day", "tokens": 40}]}])
    settings["routes"] = [
        {
            "name": "chat",
            "targets": [
                {"provider": "echo", "model": "m"},
                {"provider": "other", "model": "m", "priority": 1},
            ],
        }
    ]
    with run_gateway(settings) as gateway:
        served = [raw_chat(gateway.url, {"x-api-key": BUDGET}, model="chat") for _ in range(8)]
        assert all(response.status_code == 200 for response in served)
        providers = [response.headers["x-asbru-provider"] for response in served]
        assert providers[0] == "echo"
        assert providers[-1] == "other"


def test_no_key_value_in_logs_metrics_or_errors(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    for key in (LIMITED, BUDGET, CHEAP):
        for model in ("echo/x", "other/x", "nope"):
            texts.append(raw_chat(gateway.url, {"x-api-key": key}, model=model).text)
    texts.append(httpx.get(gateway.url + "/metrics").text)
    texts.append(caplog.text)
    for text in texts:
        for value in KEYS.values():
            assert value not in text
