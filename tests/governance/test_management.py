"""The management API: its own port, an admin token, usage and limits per key/team/provider/model,
the redacted effective config and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asbru_gateway.app import AppSettings
from tests.gateway_server import RunningGateway, run_gateway
from tests.governance.clients import raw_chat
from tests.governance.test_plugin import BUDGET, CHEAP, KEYS, LIMITED, config
from tests.redis_server import RedisServer

TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningGateway]:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    settings = AppSettings(shutdown_drain_s=2, admin_port=0, admin_token=TOKEN)
    with run_gateway(config(), settings=settings) as running:
        yield running


def admin(gateway: RunningGateway) -> httpx.Client:
    assert gateway.app.management is not None
    return httpx.Client(
        base_url=f"http://127.0.0.1:{gateway.app.management.port}",
        headers={"authorization": f"Bearer {TOKEN}"},
    )


def test_the_token_is_required(gateway: RunningGateway) -> None:
    with admin(gateway) as client:
        assert client.get("/healthz", headers={"authorization": ""}).status_code == 200
        assert client.get("/v1/keys", headers={"authorization": ""}).status_code == 401
        assert client.get("/v1/keys", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert (
            client.get("/v1/keys", headers={"authorization": "", "x-asbru-admin-token": TOKEN}).status_code
            == 200
        )


def test_usage_and_remaining_limits_per_key_team_provider_and_model(gateway: RunningGateway) -> None:
    for _ in range(3):
        assert raw_chat(gateway.url, {"x-api-key": LIMITED}).status_code == 200
    assert raw_chat(gateway.url, {"x-api-key": CHEAP}, model="chat").status_code == 200
    with admin(gateway) as client:
        key = client.get("/v1/keys/limited").json()
        (limit,) = key["limits"]
        assert limit == {
            "name": "key-requests-minute",
            "kind": "rate_limit",
            "metric": "requests",
            "window": "minute",
            "calendar": False,
            "quota": 10,
            "used": 3,
            "remaining": 7,
            "reset_seconds": 60,
        }
        assert key["usage"]["day"] == {"requests": 3, "tokens": 12, "usd": 0.012}
        cheap = client.get("/v1/keys/cheap").json()
        assert [lim["name"] for lim in cheap["limits"]] == ["key-usd-month-c", "team-requests-day"]
        assert cheap["limits"][0]["used"] == 0.004
        team = client.get("/v1/teams/eng").json()
        assert team["keys"] == ["cheap"] and team["usage"]["month"]["requests"] == 1
        provider = client.get("/v1/providers/echo").json()
        assert provider["usage"]["day"]["requests"] == 4
        models = {(m["provider"], m["model"]): m for m in client.get("/v1/models").json()}
        assert models[("echo", "m")]["usage"]["day"]["requests"] == 1  # the route's configured model
        assert models[("echo", "other")]["usage"]["day"]["requests"] == 3  # echo/demo: not a configured name
        assert models[("echo", "m")]["price_source"] == "override"
        assert client.get("/v1/store").json()["shared"] is False
        assert [k["name"] for k in client.get("/v1/keys").json()] == ["budget", "cheap", "limited"]
        assert client.get("/v1/keys/nope").status_code == 404


def test_effective_config_is_redacted_and_openapi_is_served(gateway: RunningGateway) -> None:
    hashed: Any = config()
    hashed["governance"]["virtual_keys"][0] = {
        "name": "limited",
        "hash": "sha256:00112233445566778899aabbccddeeff:" + "ab" * 32,
    }
    gateway.apply(hashed)
    with admin(gateway) as client:
        served = client.get("/v1/config").json()
        text = str(served)
        assert served["config"]["governance"]["virtual_keys"][0]["hash"] == "sha256:***"
        assert "ab" * 32 not in text
        assert "env:VK_BUDGET" in text
        for value in (LIMITED, BUDGET, CHEAP, TOKEN):
            assert value not in text
        document = client.get("/openapi.json").json()
        assert {
            "/v1/keys",
            "/v1/keys/{name}",
            "/v1/teams",
            "/v1/providers",
            "/v1/models",
            "/v1/config",
        } <= set(document["paths"])


def test_with_redis_every_replica_reports_the_same_usage(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    shared = config(redis={"url": redis.url})
    settings = AppSettings(shutdown_drain_s=2, admin_port=0, admin_token=TOKEN)
    with run_gateway(shared, settings=settings) as first, run_gateway(shared, settings=settings) as second:
        for gateway in (first, second, first):
            assert raw_chat(gateway.url, {"x-api-key": LIMITED}).status_code == 200
        for gateway in (first, second):
            with admin(gateway) as client:
                assert client.get("/v1/keys/limited").json()["limits"][0]["used"] == 3
                assert client.get("/v1/store").json() == {
                    **client.get("/v1/store").json(),
                    "kind": "redis",
                    "shared": True,
                }
