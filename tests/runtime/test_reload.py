"""Hot reload: configs change under load and no client request fails because of it."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from asbru_gateway.errors import ConfigError
from tests.fakes import openai as fake_openai
from tests.fakes.server import Recorder
from tests.gateway_server import RunningGateway, run_gateway

RELOADS = 20


def _config(upstream: str, generation: int) -> dict[str, Any]:
    """Every generation changes the OpenAI provider (new pool and client) and the route table."""
    openai_provider = fake_openai.provider_config(upstream)
    openai_provider["pool"] = {"concurrency": 8 + generation % 3, "queue_size": 64}
    openai_provider["network"] = {"max_retries": 0, "headers": {"x-generation": str(generation)}}
    return {
        "server": {"drain_timeout_s": 10},
        "providers": [
            {"name": "echo", "type": "echo", "options": {"chunk_delay_ms": 5}},
            openai_provider,
        ],
        "routes": [
            {"name": f"gen-{generation}", "targets": [{"provider": "echo", "model": "e"}]},
            {"name": "stable", "targets": [{"provider": "openai", "model": "slow-20"}]},
        ],
        "plugins": [{"name": "telemetry", "type": "telemetry", "order": generation % 2}],
    }


@pytest.fixture
def gateway(openai_upstream: tuple[str, Recorder]) -> Iterator[RunningGateway]:
    with run_gateway(_config(openai_upstream[0], 0)) as running:
        yield running


async def _json_call(client: httpx.AsyncClient, model: str) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x y"}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


async def _stream_call(client: httpx.AsyncClient, model: str) -> None:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "one two three four"}]}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]", events[-3:]
    assert not any('"error"' in event for event in events)


async def test_twenty_reloads_under_load_fail_nothing(
    gateway: RunningGateway, openai_upstream: tuple[str, Recorder]
) -> None:
    stop = asyncio.Event()
    completed = {"json": 0, "stream": 0}
    failures: list[BaseException] = []
    progressed = asyncio.Event()

    async def worker(kind: str, model: str) -> None:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    if kind == "json":
                        await _json_call(client, model)
                    else:
                        await _stream_call(client, model)
                    completed[kind] += 1
                    progressed.set()
                except Exception as error:  # collected, asserted below with the details
                    failures.append(error)

    workers = [asyncio.create_task(worker("json", "stable")) for _ in range(4)]
    workers += [asyncio.create_task(worker("stream", "echo/e")) for _ in range(3)]
    workers += [asyncio.create_task(worker("stream", "openai/slow-10")) for _ in range(2)]
    revisions = set()
    for generation in range(1, RELOADS + 1):
        target = completed["json"] + completed["stream"] + 3
        async with asyncio.timeout(20):  # let requests overlap every reload
            while completed["json"] + completed["stream"] < target:
                progressed.clear()
                await progressed.wait()
        revisions.add(await asyncio.to_thread(gateway.apply, _config(openai_upstream[0], generation)))
    stop.set()
    await asyncio.gather(*workers)
    assert failures == []
    assert len(revisions) == RELOADS
    assert completed["json"] > RELOADS and completed["stream"] > RELOADS
    snapshot = gateway.app.gateway.current
    assert snapshot is not None and f"gen-{RELOADS}" in {r.name for r in snapshot.config.routes}


async def test_stream_in_flight_survives_its_provider_being_replaced(
    gateway: RunningGateway, openai_upstream: tuple[str, Recorder]
) -> None:
    old_runtime = gateway.app.gateway.current.pools.get("openai")  # type: ignore[union-attr]
    body = {"model": "openai/slow-150", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        lines = response.aiter_lines()
        first = await anext(lines)
        assert first.startswith("data: ")
        await asyncio.to_thread(gateway.apply, _config(openai_upstream[0], 1))
        rest = [line async for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]"
    new_runtime = gateway.app.gateway.current.pools.get("openai")  # type: ignore[union-attr]
    assert new_runtime is not old_runtime
    assert old_runtime is not None and old_runtime.pool.retired


def test_unchanged_providers_keep_their_runtime(
    gateway: RunningGateway, openai_upstream: tuple[str, Recorder]
) -> None:
    before = gateway.app.gateway.current
    assert before is not None
    changed = _config(openai_upstream[0], 0)
    changed["routes"].append({"name": "extra", "targets": [{"provider": "echo", "model": "z"}]})
    gateway.apply(changed)
    after = gateway.app.gateway.current
    assert after is not None and after.revision != before.revision
    assert after.pools.get("echo") is before.pools.get("echo")
    assert after.pools.get("openai") is before.pools.get("openai")


def test_rotated_key_builds_a_new_runtime_and_is_used(
    gateway: RunningGateway, openai_upstream: tuple[str, Recorder]
) -> None:
    config = _config(openai_upstream[0], 0)
    config["providers"][1]["keys"] = [{"name": "k1", "secret": "secret:openai-key"}]
    gateway.apply(config, {"openai-key": "sk-first-key-000000"})
    with httpx.Client(base_url=gateway.url) as client:
        body = {"model": "openai/m", "messages": [{"role": "user", "content": "x"}]}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        gateway.apply(config, {"openai-key": "sk-second-key-11111"})
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    sent = [r.headers["Authorization"] for r in openai_upstream[1].requests[-2:]]
    assert sent == ["Bearer sk-first-key-000000", "Bearer sk-second-key-11111"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["providers"][0].update(type="no-such-type"), "providers[echo].type"),
        (lambda c: c["plugins"][0].update(type="nope"), "plugins[telemetry].type"),
        (
            lambda c: c["providers"][1].update(keys=[{"name": "k", "secret": "env:ASBRU_UNSET_VAR"}]),
            "providers[openai].keys[k].secret",
        ),
        (lambda c: c["routes"][0]["targets"][0].update(provider="ghost"), "unknown provider 'ghost'"),
        (lambda c: c["providers"][1]["pool"].update(concurrency=0), "providers.1.pool.concurrency"),
    ],
)
def test_invalid_config_is_rejected_and_the_last_good_one_keeps_serving(
    gateway: RunningGateway, openai_upstream: tuple[str, Recorder], mutate: Any, expected: str
) -> None:
    before = gateway.app.gateway.current
    assert before is not None
    bad = copy.deepcopy(_config(openai_upstream[0], 5))
    mutate(bad)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        gateway.apply(bad)
    assert gateway.app.gateway.current is before
    with httpx.Client(base_url=gateway.url) as client:
        ready = client.get("/readyz").json()
        assert (ready["status"], ready["revision"]) == ("ready", before.revision)
        assert expected in ready["rejected"]["reason"]  # which revision was refused, and why
        response = client.post(
            "/v1/chat/completions",
            json={"model": "gen-0", "messages": [{"role": "user", "content": "still here"}]},
        )
        assert orjson.loads(response.content)["choices"][0]["message"]["content"] == "still here"
        metrics = client.get("/metrics").text
    assert 'asbru_config_reloads_total{result="rejected"}' in metrics
