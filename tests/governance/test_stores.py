"""Both counter stores hold the same semantics: atomic reserve over all limits, settle, windows.

Times are a fake clock (``now_ms`` passed in), so sliding windows and calendar periods are tested
without waiting; the Redis store runs against a real redis-server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from asbru_gateway.config.governance import RedisConfig
from asbru_gateway.governance.limits import REQUESTS, TOKENS, USD, Limit
from asbru_gateway.governance.redis_store import RedisStore
from asbru_gateway.governance.store import CounterStore, MemoryStore, Settlement
from asbru_gateway.governance.windows import Window
from tests.redis_server import RedisServer

T0 = int(datetime(2030, 3, 14, 12, 0, tzinfo=UTC).timestamp() * 1000)
RPM = Limit("key/a", REQUESTS, Window("minute", calendar=False), 10, budget=False)
TPD = Limit("key/a", TOKENS, Window("day", calendar=True), 200, budget=True)
TEAM_TPM = Limit("team/t", TOKENS, Window("minute", calendar=False), 100, budget=False)
USD_MONTH = Limit("key/a", USD, Window("month", calendar=True), 5_000_000, budget=True)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CounterStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server: RedisServer = request.getfixturevalue("redis")
    redis_store = RedisStore(RedisConfig(url=server.url), server.url, None)
    await redis_store.start()
    try:
        yield redis_store
    finally:
        await redis_store.close()


async def test_requests_up_to_the_quota_then_refused_with_retry(store: CounterStore) -> None:
    for second in range(10):
        decision = await store.reserve((RPM,), [1], T0 + second * 1000)
        assert decision.allowed
        assert decision.used == [second + 1]
    refused = await store.reserve((RPM,), [1], T0 + 30_000)
    assert not refused.allowed
    assert refused.failed == 0
    assert refused.used == [10]
    # the first request's bucket leaves the (conservative) window 61 s after it was counted
    assert refused.retry_ms == 61_000 - 30_000


async def test_sliding_window_frees_old_buckets(store: CounterStore) -> None:
    for _ in range(10):
        assert (await store.reserve((RPM,), [1], T0)).allowed
    assert not (await store.reserve((RPM,), [1], T0 + 60_000)).allowed  # still within 60 buckets + 1
    assert (await store.reserve((RPM,), [1], T0 + 61_000)).allowed
    assert await store.usage((RPM,), T0 + 61_000) == [1]


async def test_all_limits_or_none(store: CounterStore) -> None:
    limits = (RPM, TEAM_TPM)
    assert (await store.reserve(limits, [1, 90], T0)).allowed
    refused = await store.reserve(limits, [1, 20], T0)
    assert not refused.allowed
    assert refused.failed == 1
    assert await store.usage(limits, T0) == [1, 90]  # the request limit was not counted either


async def test_settle_replaces_estimate_and_never_goes_negative(store: CounterStore) -> None:
    assert (await store.reserve((TPD,), [50], T0)).allowed
    await store.settle(Settlement([((TPD,), [-46], T0)]))
    assert await store.usage((TPD,), T0 + 5) == [4]
    await store.settle(Settlement([((TPD,), [-100], T0)]))
    assert await store.usage((TPD,), T0 + 5) == [0]


async def test_calendar_budget_refills_at_period_end(store: CounterStore) -> None:
    assert (await store.reserve((TPD,), [200], T0)).allowed
    refused = await store.reserve((TPD,), [1], T0 + 1000)
    assert not refused.allowed
    assert refused.retry_ms == 12 * 3600 * 1000 - 1000  # until 00:00 UTC
    next_day = T0 + 12 * 3600 * 1000
    assert (await store.reserve((TPD,), [1], next_day)).allowed
    # a settlement of yesterday's reservation does not touch today
    await store.settle(Settlement([((TPD,), [-100], T0)]))
    assert await store.usage((TPD,), next_day) == [1]


async def test_month_in_micro_dollars(store: CounterStore) -> None:
    assert (await store.reserve((USD_MONTH,), [4_999_999], T0)).allowed
    assert (await store.reserve((USD_MONTH,), [1], T0)).allowed
    assert not (await store.reserve((USD_MONTH,), [1], T0)).allowed


async def test_a_request_larger_than_the_quota_waits_a_whole_window(store: CounterStore) -> None:
    tpm = Limit("key/a", TOKENS, Window("minute", calendar=False), 100, budget=False)
    refused = await store.reserve((tpm,), [101], T0)
    assert not refused.allowed
    assert refused.retry_ms == 60_000


async def test_concurrent_reservations_are_exact(store: CounterStore) -> None:
    decisions = await asyncio.gather(*(store.reserve((RPM, TPD), [1, 15], T0) for _ in range(40)))
    allowed = [decision for decision in decisions if decision.allowed]
    assert len(allowed) == 10
    assert await store.usage((RPM, TPD), T0) == [10, 150]


async def test_records_create_their_counters_and_corrections_never_do(store: CounterStore) -> None:
    await store.settle(Settlement([((TPD,), [5], T0)], ("key/a", "team/t"), 12, 3_000, T0))
    await store.settle(Settlement([], ("key/a",), 8, 1_000, T0 + 5))
    assert await store.usage((TPD,), T0) == [0]
    assert (await store.totals("key/a", T0 + 10))["day"] == {"requests": 2, "tokens": 20, "usd": 0.004}
    assert (await store.totals("team/t", T0 + 10))["month"] == {"requests": 1, "tokens": 12, "usd": 0.003}
    assert (await store.totals("key/a", T0 + 12 * 3600 * 1000))["day"] == {
        "requests": 0,
        "tokens": 0,
        "usd": 0.0,
    }
