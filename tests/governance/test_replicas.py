"""Several ``asbru serve`` processes on one real redis-server: limits are exact across all of them.

The acceptance example (``examples/governance/asbru.yaml``) runs as users run it; clients of every
dialect hit every process concurrently; Redis is stopped and restarted mid-run under both failure
policies; keys are rotated (a watched file) and expire. No key value appears in any process's log.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.governance.clients import DIALECTS, call, raw_chat
from tests.redis_server import RedisServer
from tests.test_cli import Served, _free_port, serve
from tests.waiting import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/governance/asbru.yaml"
LIMITED = "vk-limited-0123456789abcdef"
BUDGET = "vk-budget-0123456789abcdef"


@contextmanager
def replicas(tmp_path: Path, count: int, config: Path, env: dict[str, str]) -> Iterator[list[Served]]:
    with ExitStack() as stack:
        yield [stack.enter_context(serve(tmp_path, "--config", str(config), env=env)) for _ in range(count)]


def _env(redis: RedisServer) -> dict[str, str]:
    return {"ASBRU_REDIS_URL": redis.url, "VK_LIMITED": LIMITED, "VK_BUDGET": BUDGET}


def _write(tmp_path: Path, changes: dict[str, Any]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["governance"].update(changes)
    path = tmp_path / "asbru.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _assert_no_key_in_logs(processes: list[Served], *values: str) -> None:
    for process in processes:
        log = process.log_text()
        for value in values:
            assert value not in log


def test_acceptance_two_processes_let_exactly_ten_requests_a_minute_through(
    tmp_path: Path, redis: RedisServer
) -> None:
    with replicas(tmp_path, 2, EXAMPLE, _env(redis)) as served, ThreadPoolExecutor(12) as pool:
        urls = [served[i % 2].url for i in range(30)]
        responses = list(pool.map(lambda url: raw_chat(url, {"authorization": f"Bearer {LIMITED}"}), urls))
        statuses = [response.status_code for response in responses]
        assert statuses.count(200) == 10
        assert statuses.count(429) == 20
        passed_on = {url for url, status in zip(urls, statuses, strict=True) if status == 200}
        refused = next(response for response in responses if response.status_code == 429)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["retry-after"]
        assert len(passed_on) >= 1
        assert raw_chat(served[0].url, {}).status_code == 401
        _assert_no_key_in_logs(served, LIMITED, BUDGET)


def test_every_dialect_on_three_processes_never_overspends_a_budget(
    tmp_path: Path, redis: RedisServer
) -> None:
    with replicas(tmp_path, 3, EXAMPLE, _env(redis)) as served, ThreadPoolExecutor(9) as pool:
        jobs = [(DIALECTS[i % 3], served[i % 3].url, i % 2 == 1) for i in range(45)]
        results = list(
            pool.map(
                lambda job: call(job[0], job[1], BUDGET, text="one two three four five", stream=job[2]), jobs
            )
        )
        statuses = [result.status for result in results]
        assert set(statuses) <= {200, 429}
        spent = statuses.count(200) * 10  # echo: 5 words in, 5 out
        assert 100 < spent <= 200
        assert all("budget exceeded" in result.text for result in results if result.status == 429)
        # the settled counter in Redis is exactly what the answers used
        policy = raw_chat(served[0].url, {"x-api-key": BUDGET})
        assert policy.status_code == 429
        assert f'"key-tokens-day-c";r={200 - spent};' in policy.headers["ratelimit"]
        _assert_no_key_in_logs(served, LIMITED, BUDGET)


def _stop_and_restart(redis: RedisServer, served: list[Served], while_down: Any) -> None:
    redis.stop()
    try:
        while_down()
    finally:
        redis.start()


def _store_up(url: str) -> bool:
    raw_chat(url, {"x-api-key": BUDGET})
    return "asbru_governance_store_up 1.0" in httpx.get(url + "/metrics").text


def test_redis_down_fail_open_serves_then_counts_again(tmp_path: Path, redis: RedisServer) -> None:
    config = _write(
        tmp_path, {"redis": {"url": "env:ASBRU_REDIS_URL", "timeout_ms": 200, "retry_interval_s": 0.2}}
    )
    with replicas(tmp_path, 2, config, _env(redis)) as served:
        for i in range(4):
            assert raw_chat(served[i % 2].url, {"x-api-key": LIMITED}).status_code == 200

        def while_down() -> None:
            for i in range(15):  # more than the limit: nothing is counted while Redis is away
                assert raw_chat(served[i % 2].url, {"x-api-key": LIMITED}).status_code == 200
            assert "asbru_governance_store_up 0.0" in httpx.get(served[0].url + "/metrics").text

        _stop_and_restart(redis, served, while_down)
        for process in served:  # each process finds Redis again on its own (a budget-key request each)
            wait_until(lambda url=process.url: _store_up(url), "Redis back in use", timeout_s=10)
        # the new Redis is empty: 10 more pass, then the limit holds again, without any restart
        statuses = [raw_chat(served[i % 2].url, {"x-api-key": LIMITED}).status_code for i in range(14)]
        assert statuses.count(200) == 10 and statuses[-4:] == [429] * 4
        assert "asbru_governance_store_up 1.0" in httpx.get(served[1].url + "/metrics").text


def test_redis_down_fail_closed_answers_503_in_each_dialect(tmp_path: Path, redis: RedisServer) -> None:
    redis_config = {
        "url": "env:ASBRU_REDIS_URL",
        "timeout_ms": 200,
        "retry_interval_s": 0.2,
        "on_failure": "closed",
    }
    config = _write(tmp_path, {"redis": redis_config})
    with replicas(tmp_path, 2, config, _env(redis)) as served:
        assert call("openai", served[0].url, LIMITED).status == 200

        def while_down() -> None:
            for index, dialect in enumerate(DIALECTS):
                result = call(dialect, served[index % 2].url, LIMITED)
                assert result.status == 503
                assert "unavailable" in result.text
            metrics = httpx.get(served[0].url + "/metrics").text
            assert 'asbru_governance_decisions_total{decision="unavailable"}' in metrics

        _stop_and_restart(redis, served, while_down)
        # each process tries Redis again once its retry interval after its last failure is over
        for process in served:
            wait_until(lambda url=process.url: _store_up(url), "Redis back in use", timeout_s=10)
        assert call("anthropic", served[0].url, LIMITED).status == 200
        assert call("gemini", served[1].url, LIMITED).status == 200


def test_a_rotated_key_reaches_every_process_and_keeps_its_counts(tmp_path: Path, redis: RedisServer) -> None:
    secret = tmp_path / "limited.key"
    secret.write_text("vk-before-rotation-0123456789\n")
    data = yaml.safe_load(EXAMPLE.read_text())
    data["governance"]["virtual_keys"][0]["secret"] = f"file:{secret}"
    config = tmp_path / "rotating.yaml"
    config.write_text(yaml.safe_dump(data))
    with replicas(tmp_path, 2, config, _env(redis)) as served:
        for i in range(6):
            assert (
                raw_chat(served[i % 2].url, {"x-api-key": "vk-before-rotation-0123456789"}).status_code == 200
            )
        revisions = [httpx.get(process.url + "/readyz").json()["revision"] for process in served]
        secret.write_text("vk-after-rotation-0123456789\n")
        for process, revision in zip(served, revisions, strict=True):
            wait_until(
                lambda url=process.url, old=revision: httpx.get(url + "/readyz").json()["revision"] != old,
                "the rotated key file reloaded",
            )
            assert raw_chat(process.url, {"x-api-key": "vk-before-rotation-0123456789"}).status_code == 401
        statuses = [
            raw_chat(served[i % 2].url, {"x-api-key": "vk-after-rotation-0123456789"}).status_code
            for i in range(6)
        ]
        assert statuses == [200] * 4 + [429] * 2  # the count went on across the rotation
        _assert_no_key_in_logs(served, "vk-before-rotation-0123456789", "vk-after-rotation-0123456789")


def test_a_key_expires_on_every_process(tmp_path: Path, redis: RedisServer) -> None:
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
    data = yaml.safe_load(EXAMPLE.read_text())
    data["governance"]["virtual_keys"][0]["expires_at"] = expiry
    config = tmp_path / "expiring.yaml"
    config.write_text(yaml.safe_dump(data))
    with replicas(tmp_path, 2, config, _env(redis)) as served:
        assert raw_chat(served[0].url, {"x-api-key": LIMITED}).status_code == 200
        for process in served:
            wait_until(
                lambda url=process.url: raw_chat(url, {"x-api-key": LIMITED}).status_code == 401,
                "the key expired",
                timeout_s=15,
            )
        assert "expired" in raw_chat(served[1].url, {"x-api-key": LIMITED}).json()["error"]["message"]


def test_two_workers_share_one_management_port(tmp_path: Path, redis: RedisServer) -> None:
    port = _free_port()
    env = {**_env(redis), "ASBRU_ADMIN_TOKEN": "admin-token-0123456789"}
    args = ("--config", str(EXAMPLE), "--workers", "2", "--admin-port", str(port))
    with serve(tmp_path, *args, env=env) as served:
        headers = {"authorization": "Bearer admin-token-0123456789"}
        wait_until(
            lambda: "served by another worker" in served.log_text(),
            "the second worker to skip the admin port",
        )
        for _ in range(4):
            assert raw_chat(served.url, {"x-api-key": LIMITED}).status_code == 200
        key = httpx.get(f"http://127.0.0.1:{port}/v1/keys/limited", headers=headers).json()
        assert key["limits"][0]["used"] == 4  # both workers count in Redis
        _assert_no_key_in_logs([served], LIMITED, "admin-token-0123456789")
        # SIGTERM, not the helper's kill: the supervisor stops its workers (a kill would orphan them).
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(15)
