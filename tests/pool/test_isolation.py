"""Provider isolation: a provider that hangs fills its own pool and nothing else; queues are fair.

Through the gateway: a saturated pool answers 503 + Retry-After at once (``reject``) or queues
callers up to ``queue_timeout_s`` (``wait``); another provider's latency is unaffected; clients
that give up free their slots. Then ``BoundedPool`` itself: FIFO hand-over, cancellation,
timeouts, retirement on reload and ``wait_idle``.

The upstream here is a "gate" fake: a request for model ``gate-<name>`` is held until the test
opens gate ``<name>`` (a request that is never released is the ``hang`` scenario); any other model
answers at once. Tests wait on observable conditions (pool counters, arrivals), never on sleeps.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from asbru_gateway.config.model import Overflow, PoolConfig
from asbru_gateway.errors import PoolFullError
from asbru_gateway.pool.bounded import BoundedPool
from tests.fakes import openai as fake_openai
from tests.fakes.server import serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway

HELLO = [{"role": "user", "content": "hi"}]
WAIT_TIMEOUT_S = 10.0


# --- the gate fake -------------------------------------------------------------------------------


@dataclass
class GateUpstream:
    """The fake's state. Gates live in the fake's own loop; the test opens them thread-safely."""

    url: str
    loop: asyncio.AbstractEventLoop
    arrivals: list[str] = field(default_factory=list)
    _gates: dict[str, asyncio.Event] = field(default_factory=dict)
    _all_open: bool = False

    def gate(self, name: str) -> asyncio.Event:
        """In the fake's loop only."""
        gate = self._gates.setdefault(name, asyncio.Event())
        if self._all_open:
            gate.set()
        return gate

    def open(self, name: str) -> None:
        self.loop.call_soon_threadsafe(lambda: self.gate(name).set())

    def open_all(self) -> None:
        def everything() -> None:
            self._all_open = True
            for gate in self._gates.values():
                gate.set()

        self.loop.call_soon_threadsafe(everything)


@pytest.fixture
def upstream() -> Iterator[GateUpstream]:
    holder: list[GateUpstream] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def remember_loop(_: web.Application) -> None:
        loops.append(asyncio.get_running_loop())

    async def chat(request: web.Request) -> web.Response:
        fake = holder[0]
        body = await request.json()
        model = str(body["model"])
        fake.arrivals.append(model)
        if model.startswith("gate-"):
            await fake.gate(model.removeprefix("gate-")).wait()  # opened by the test or its teardown
        return web.json_response(
            {
                "id": "chatcmpl-gate",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": model}, "finish_reason": "stop"}
                ],
            }
        )

    app = web.Application()
    app.on_startup.append(remember_loop)
    app.router.add_post("/v1/chat/completions", chat)
    with serve_in_thread(app) as url:
        fake = GateUpstream(url, loops[0])
        holder.append(fake)
        try:
            yield fake
        finally:
            fake.open_all()  # let every held handler finish so the fake shuts down cleanly


def _provider(name: str, url: str, **pool: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "openai",
        "base_url": f"{url}/v1",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_OPENAI_KEY"}],
        "network": {"max_retries": 0, "request_timeout_s": 600},
        "pool": pool,
    }


def _pool(gateway: RunningGateway, provider: str) -> BoundedPool:
    snapshot = gateway.app.gateway.current
    assert snapshot is not None
    runtime = snapshot.pools.get(provider)
    assert runtime is not None
    return runtime.pool


async def _until(condition: Callable[[], bool], what: str, limit_s: float = WAIT_TIMEOUT_S) -> None:
    """Poll ``condition`` (cheap, side-effect free) until it holds; fail after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for: {what}")
        await asyncio.sleep(0.005)


async def _metric_value(client: httpx.AsyncClient, name: str, provider: str) -> float:
    text = (await client.get("/metrics")).text
    prefix = f'{name}{{provider="{provider}"}} '
    values = [float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix)]
    assert values, f"{name} for {provider} not in /metrics"
    return values[0]


def _chat_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, **extra}


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[[RunningGateway], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(gateway: RunningGateway) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=gateway.url, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


# --- isolation through the gateway ------------------------------------------------------------------


async def _p50_latency(client: httpx.AsyncClient, count: int) -> float:
    timings = []
    for index in range(count):
        started = time.perf_counter()
        response = await client.post(
            "/v1/chat/completions",
            json=_chat_body("echo/x", messages=[{"role": "user", "content": f"ping {index}"}]),
        )
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == f"ping {index}"
    return statistics.median(timings)


async def test_hanging_provider_fills_only_its_own_pool(
    upstream: GateUpstream, client_factory: Callable[[RunningGateway], httpx.AsyncClient]
) -> None:
    config = {
        "providers": [
            _provider("slowpoke", upstream.url, concurrency=4, queue_size=0, overflow="reject"),
            {"name": "echo", "type": "echo"},
        ],
        "routes": [
            {
                "name": "rescued",
                "targets": [
                    {"provider": "slowpoke", "model": "m", "priority": 0},
                    {"provider": "echo", "model": "e", "priority": 1},
                ],
            }
        ],
    }
    with run_gateway(config) as gateway:
        pool = _pool(gateway, "slowpoke")
        hanging_client, client = client_factory(gateway), client_factory(gateway)
        await _p50_latency(client, 10)  # warm up connections and code paths
        before = await _p50_latency(client, 40)
        rejected_before = await _metric_value(client, "asbru_pool_rejections_total", "slowpoke")

        hanging = [
            asyncio.create_task(
                hanging_client.post("/v1/chat/completions", json=_chat_body("slowpoke/gate-never"))
            )
            for _ in range(4)
        ]
        try:
            await _until(
                lambda: pool.in_flight == 4 and len(upstream.arrivals) == 4,
                "4 requests holding slowpoke's slots",
            )
            assert await _metric_value(client, "asbru_pool_in_flight", "slowpoke") == 4

            # A fifth is refused at once, with a hint when to come back, and never sent upstream.
            started = time.monotonic()
            fifth = await client.post("/v1/chat/completions", json=_chat_body("slowpoke/gate-never"))
            assert time.monotonic() - started < 2
            assert fifth.status_code == 503
            assert fifth.headers["retry-after"] == "1"
            assert fifth.json()["error"]["code"] == "pool_full"
            assert len(upstream.arrivals) == 4
            rejected = await _metric_value(client, "asbru_pool_rejections_total", "slowpoke")
            assert rejected - rejected_before == 1

            # pool_full is a fallback trigger: a route moves on to its next target.
            rescued = await client.post("/v1/chat/completions", json=_chat_body("rescued"))
            assert rescued.status_code == 200
            assert rescued.json()["choices"][0]["message"]["content"] == "hi"

            # The healthy provider keeps its latency (ratio with slack: robust on a busy machine).
            during = await _p50_latency(client, 40)
            assert during <= before * 3 + 0.02, (before, during)
            assert not any(task.done() for task in hanging), "slowpoke requests are still held"
        finally:
            await _cancel(hanging)

        # The clients gave up: the gateway must give their slots back (not after request_timeout_s).
        await _until(lambda: pool.in_flight == 0, "slowpoke's slots released after client disconnects")
        upstream.open_all()
        after = await client.post("/v1/chat/completions", json=_chat_body("slowpoke/instant"))
        assert after.status_code == 200


async def test_stream_clients_that_disconnect_before_the_first_byte_free_their_slot(
    upstream: GateUpstream, client_factory: Callable[[RunningGateway], httpx.AsyncClient]
) -> None:
    config = {
        "providers": [_provider("slowpoke", upstream.url, concurrency=2, queue_size=0, overflow="reject")]
    }
    with run_gateway(config) as gateway:
        pool, client = _pool(gateway, "slowpoke"), client_factory(gateway)

        async def open_stream() -> None:
            async with client.stream(
                "POST", "/v1/chat/completions", json=_chat_body("slowpoke/gate-never", stream=True)
            ) as response:
                await response.aread()

        streams = [asyncio.create_task(open_stream()) for _ in range(2)]
        try:
            await _until(lambda: pool.in_flight == 2 and len(upstream.arrivals) == 2, "2 streams held")
        finally:
            await _cancel(streams)
        await _until(lambda: pool.in_flight == 0, "stream slots released after client disconnects")


async def test_wait_overflow_queues_then_serves_in_order(
    upstream: GateUpstream, client_factory: Callable[[RunningGateway], httpx.AsyncClient]
) -> None:
    config = {
        "providers": [
            _provider(
                "queued", upstream.url, concurrency=1, queue_size=1, overflow="wait", queue_timeout_s=30
            )
        ]
    }
    with run_gateway(config) as gateway:
        pool, client = _pool(gateway, "queued"), client_factory(gateway)
        first = asyncio.create_task(client.post("/v1/chat/completions", json=_chat_body("queued/gate-first")))
        await _until(lambda: pool.in_flight == 1 and upstream.arrivals == ["gate-first"], "first in flight")
        second = asyncio.create_task(client.post("/v1/chat/completions", json=_chat_body("queued/second")))
        await _until(lambda: pool.queued == 1, "second queued")

        # The queue is full too: a third is refused at once.
        third = await client.post("/v1/chat/completions", json=_chat_body("queued/third"))
        assert third.status_code == 503
        assert third.json()["error"]["code"] == "pool_full"
        assert third.headers["retry-after"] == "1"
        assert not second.done()
        assert upstream.arrivals == ["gate-first"], "a queued request is not sent before it has a slot"

        upstream.open("first")
        first_response, second_response = await asyncio.wait_for(asyncio.gather(first, second), 20)
        assert first_response.status_code == 200
        assert second_response.status_code == 200
        assert second_response.json()["choices"][0]["message"]["content"] == "second"
        assert upstream.arrivals == ["gate-first", "second"]
        assert pool.in_flight == 0 and pool.queued == 0


async def test_queued_client_that_disconnects_leaves_the_queue(
    upstream: GateUpstream, client_factory: Callable[[RunningGateway], httpx.AsyncClient]
) -> None:
    config = {
        "providers": [
            _provider(
                "queued", upstream.url, concurrency=1, queue_size=1, overflow="wait", queue_timeout_s=30
            )
        ]
    }
    with run_gateway(config) as gateway:
        pool, client = _pool(gateway, "queued"), client_factory(gateway)
        holder = asyncio.create_task(client.post("/v1/chat/completions", json=_chat_body("queued/gate-hold")))
        await _until(lambda: pool.in_flight == 1 and upstream.arrivals == ["gate-hold"], "slot held")
        quitter = asyncio.create_task(client.post("/v1/chat/completions", json=_chat_body("queued/quitter")))
        await _until(lambda: pool.queued == 1, "quitter queued")
        await _cancel([quitter])
        # Its queue place is free again well before queue_timeout_s: another caller can queue.
        await _until(lambda: pool.queued == 0, "queue place released after the client left")
        upstream.open("hold")
        assert (await asyncio.wait_for(holder, 20)).status_code == 200
        assert upstream.arrivals == ["gate-hold"], "the request of a client that left is never sent"
        assert pool.in_flight == 0


async def test_queued_request_times_out_with_503(
    upstream: GateUpstream, client_factory: Callable[[RunningGateway], httpx.AsyncClient]
) -> None:
    config = {
        "providers": [
            _provider(
                "impatient", upstream.url, concurrency=1, queue_size=1, overflow="wait", queue_timeout_s=0.3
            )
        ]
    }
    with run_gateway(config) as gateway:
        pool, client = _pool(gateway, "impatient"), client_factory(gateway)
        holder = asyncio.create_task(
            client.post("/v1/chat/completions", json=_chat_body("impatient/gate-hold"))
        )
        await _until(lambda: pool.in_flight == 1 and upstream.arrivals == ["gate-hold"], "slot held")
        started = time.monotonic()
        waited = await client.post("/v1/chat/completions", json=_chat_body("impatient/waiter"))
        elapsed = time.monotonic() - started
        assert waited.status_code == 503
        error = waited.json()["error"]
        assert error["code"] == "pool_full"
        assert "no free slot within 0.3 s" in error["message"]
        assert waited.headers["retry-after"] == "1"
        assert 0.25 <= elapsed < 10
        assert pool.queued == 0
        upstream.open("hold")
        assert (await asyncio.wait_for(holder, 20)).status_code == 200
        assert upstream.arrivals == ["gate-hold"]
        assert pool.in_flight == 0


# --- BoundedPool (unit) -----------------------------------------------------------------------------


def _bounded(
    concurrency: int = 1,
    queue_size: int = 10,
    overflow: Overflow = Overflow.WAIT,
    queue_timeout_s: float = 30,
) -> BoundedPool:
    return BoundedPool(
        "p",
        PoolConfig(
            concurrency=concurrency, queue_size=queue_size, overflow=overflow, queue_timeout_s=queue_timeout_s
        ),
    )


async def _spin(condition: Callable[[], bool], what: str) -> None:
    """Let other tasks run until ``condition`` holds (bounded number of loop turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def test_fast_path_and_reject_mode() -> None:
    pool = _bounded(concurrency=2, overflow=Overflow.REJECT)
    await pool.acquire()
    await pool.acquire()
    assert pool.in_flight == 2
    with pytest.raises(PoolFullError) as raised:
        await pool.acquire()
    assert raised.value.status == 503 and raised.value.retry_after == 1.0
    assert raised.value.trigger == "pool_full"
    assert pool.rejected == 1 and pool.in_flight == 2
    pool.release()
    await pool.acquire()
    assert pool.in_flight == 2


async def test_queue_size_limits_waiters() -> None:
    pool = _bounded(concurrency=1, queue_size=2)
    await pool.acquire()
    waiters = [asyncio.create_task(pool.acquire()) for _ in range(2)]
    await _spin(lambda: pool.queued == 2, "two waiters queued")
    with pytest.raises(PoolFullError):
        await pool.acquire()
    assert pool.rejected == 1
    for _ in range(3):
        pool.release()
    await asyncio.gather(*waiters)
    assert pool.in_flight == 0


async def test_fifo_and_release_hands_slot_to_oldest_waiter() -> None:
    pool = _bounded(concurrency=1)
    await pool.acquire()
    order: list[int] = []

    async def worker(number: int) -> None:
        await pool.acquire()
        order.append(number)

    tasks = [asyncio.create_task(worker(n)) for n in range(5)]
    await _spin(lambda: pool.queued == 5, "five waiters queued")
    for expected in range(5):
        pool.release()  # handed over: the count stays at one, the oldest waiter runs
        assert pool.in_flight == 1
        await _spin(lambda n=expected: len(order) == n + 1, f"waiter {expected} served")
        # A newcomer while others wait must queue behind them, never overtake.
        if expected == 0:
            late = asyncio.create_task(worker(99))
            await _spin(lambda: pool.queued == 5, "newcomer queued at the back")
            tasks.append(late)
    pool.release()
    await _spin(lambda: len(order) == 6, "newcomer served last")
    pool.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 99]
    assert pool.in_flight == 0


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    pool = _bounded(concurrency=1)
    await pool.acquire()
    first, second = asyncio.create_task(pool.acquire()), asyncio.create_task(pool.acquire())
    await _spin(lambda: pool.queued == 2, "two queued")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert pool.queued == 1
    pool.release()
    await second  # the cancelled one is skipped: the slot goes to the next waiter
    assert pool.in_flight == 1
    pool.release()
    assert pool.in_flight == 0 and pool.queued == 0


async def test_waiter_cancelled_just_after_the_hand_over_passes_the_slot_on() -> None:
    pool = _bounded(concurrency=1)
    await pool.acquire()
    first, second = asyncio.create_task(pool.acquire()), asyncio.create_task(pool.acquire())
    await _spin(lambda: pool.queued == 2, "two queued")
    pool.release()  # the slot is handed to ``first``'s future...
    first.cancel()  # ...which is cancelled before it runs again
    with suppress(asyncio.CancelledError):
        await first
    if first.cancelled():
        await second  # the slot went on to the next waiter
    else:
        # Python 3.11's wait_for returns the result when cancelled after completion: first holds it.
        pool.release()
        await second
    assert pool.in_flight == 1 and pool.queued == 0
    pool.release()
    assert pool.in_flight == 0


async def test_queue_timeout_raises_pool_full_and_cleans_up() -> None:
    pool = _bounded(concurrency=1, queue_timeout_s=0.05)
    await pool.acquire()
    with pytest.raises(PoolFullError) as raised:
        await pool.acquire()
    assert "no free slot within 0.05 s" in raised.value.message
    assert raised.value.retry_after == 1.0
    assert pool.queued == 0 and pool.rejected == 1 and pool.in_flight == 1
    pool.release()
    assert pool.in_flight == 0


async def test_a_retired_pool_still_serves_its_queue_then_goes_idle() -> None:
    """A reload drops nothing: requests of the old revision queued on its pool are still served."""
    pool = _bounded(concurrency=1)
    await pool.acquire()
    waiters = [asyncio.create_task(pool.acquire()) for _ in range(3)]
    await _spin(lambda: pool.queued == 3, "three queued")
    pool.retire()
    idle = asyncio.create_task(pool.wait_idle(10))
    for waiter in waiters:
        pool.release()  # the running call ends: the oldest waiter gets its slot
        await waiter
    assert not idle.done()
    pool.release()
    assert await idle
    assert pool.retired and pool.queued == 0 and pool.in_flight == 0


async def test_wait_idle() -> None:
    pool = _bounded(concurrency=2)
    assert await pool.wait_idle(0.01) is True
    await pool.acquire()
    await pool.acquire()
    assert await pool.wait_idle(0.01) is False
    idle = [asyncio.create_task(pool.wait_idle(10)) for _ in range(2)]  # e.g. a drain and a shutdown
    await _spin(lambda: pool._idle is not None, "waiting for idle")
    pool.release()
    await asyncio.sleep(0)
    assert not any(task.done() for task in idle)
    pool.release()
    assert await asyncio.wait_for(asyncio.gather(*idle), 5) == [True, True]
    # Busy again: a later wait must not see the old "idle" signal.
    await pool.acquire()
    assert await pool.wait_idle(0.01) is False
    pool.release()


async def test_a_stream_client_that_leaves_mid_stream_frees_its_slot(
    openai_upstream: tuple[str, Any], client_factory: Callable[[RunningGateway], httpx.AsyncClient]
) -> None:
    # slow-3000: one event every 3 s, ~15 s in all; the slot must come back long before that.
    provider = {
        **fake_openai.provider_config(openai_upstream[0]),
        "pool": {"concurrency": 1, "queue_size": 0},
    }
    with run_gateway({"providers": [provider]}) as gateway:
        pool, client = _pool(gateway, "openai"), client_factory(gateway)
        left_at = 0.0

        async def read_first_event_then_leave() -> None:
            nonlocal left_at
            body = _chat_body("openai/slow-3000", stream=True)
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        left_at = time.monotonic()
                        return  # leaving the block closes the connection

        await read_first_event_then_leave()
        await _until(lambda: pool.in_flight == 0, "the slot of the departed stream")
        assert time.monotonic() - left_at < 2.5  # noticed within the sweeper's 0.5-1 s, not at stream end
