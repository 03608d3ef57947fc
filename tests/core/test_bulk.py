"""Large transfers take turns on the loop (``core.bulk``), and a large body still arrives whole.

The lane lets one slice of bulk work through per loop iteration, round robin over the transfers
waiting, so whatever small work is ready runs between any two slices: that is what keeps another
provider's requests fast while one provider sends megabyte answers (``bench/isolation.py``
measures the latency; these tests pin the behaviour it rests on). Through a real gateway: large
upstream bodies, read in turns and written in slices, reach the client byte for byte.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from asbru_gateway.core import bulk
from asbru_gateway.core.bulk import SLICE_BYTES, BulkLane, bulk_lane
from asbru_gateway.routing import deadlines as deadlines_module
from asbru_gateway.routing.deadlines import deadlines
from tests.fakes import openai as fake_openai
from tests.fakes.server import serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway


async def test_transfers_take_turns_and_small_work_runs_between_any_two_slices() -> None:
    lane = BulkLane()
    log: list[str] = []

    async def transfer(name: str, slices: int) -> None:
        for index in range(slices):
            await lane.turn()
            log.append(f"{name}{index}")

    async def small_work(steps: int) -> None:
        for _ in range(steps):
            log.append("-")
            await asyncio.sleep(0)

    await asyncio.gather(transfer("a", 3), transfer("b", 3), small_work(20))

    assert [entry for entry in log if entry != "-"] == ["a0", "b0", "a1", "b1", "a2", "b2"]
    slices = [index for index, entry in enumerate(log) if entry != "-"]
    assert all(later - earlier > 1 for earlier, later in itertools.pairwise(slices)), log


async def test_a_cancelled_transfer_gives_up_its_place() -> None:
    lane = BulkLane()
    served: list[str] = []

    async def transfer(name: str) -> None:
        await lane.turn()
        served.append(name)

    first, gone, last = (asyncio.create_task(transfer(name)) for name in ("first", "gone", "last"))
    await asyncio.sleep(0)  # all three are waiting in the lane
    gone.cancel()
    await asyncio.wait_for(asyncio.gather(first, last), timeout=5)
    assert served == ["first", "last"]
    assert gone.cancelled()
    await asyncio.wait_for(lane.turn(), timeout=5)  # the lane still moves


async def test_each_loop_has_its_own_lane() -> None:
    assert bulk_lane() is bulk_lane()
    assert bulk_lane() is not await asyncio.to_thread(lambda: asyncio.run(_lane_of_a_new_loop()))


async def _lane_of_a_new_loop() -> BulkLane:
    return bulk_lane()


def test_closed_loops_are_not_kept_alive_by_their_lane_or_deadlines() -> None:
    """A value that held its loop kept every closed loop (and all it referenced) alive for good."""

    async def use_both() -> None:
        await bulk_lane().turn()
        task = asyncio.current_task()
        assert task is not None
        deadlines().watch(task, 60)
        deadlines().unwatch(task)

    gc.collect()  # loops earlier tests left to the collector go first
    lanes_before, deadlines_before = len(bulk._LANES), len(deadlines_module._BY_LOOP)
    for _ in range(3):
        asyncio.run(use_both())
    gc.collect()
    assert len(bulk._LANES) <= lanes_before
    assert len(deadlines_module._BY_LOOP) <= deadlines_before


# --- through a gateway ----------------------------------------------------------------------------


def _completion(size: int) -> bytes:
    """The fake's chat.completion with ``size`` characters of content and usage at its tail."""
    answer = fake_openai._completion("gpt-4o-mini")
    answer["choices"][0]["message"]["content"] = ("lorem ipsum " * (size // 12 + 1))[:size]
    answer["usage"] = {"prompt_tokens": 3, "completion_tokens": size // 4, "total_tokens": size // 4 + 3}
    return json.dumps(answer).encode()


SIZES = {"tiny": 200, "edge": SLICE_BYTES, "large": 3 * 1024 * 1024 + 17}


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    async def chat(request: web.Request) -> web.StreamResponse:
        size = SIZES[str((await request.json())["model"])]
        response = web.StreamResponse(headers={"content-type": "application/json"})
        body = _completion(size)
        response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), 100_000):  # in pieces, as a real upstream's socket delivers it
            await response.write(body[start : start + 100_000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    with serve_in_thread(app) as url:
        config: dict[str, Any] = {
            "providers": [
                {
                    "name": "bulk",
                    "type": "openai",
                    "base_url": f"{url}/v1",
                    "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_OPENAI_KEY"}],
                    "network": {"max_retries": 0},
                }
            ],
        }
        with run_gateway(config) as running:
            yield running


async def test_large_answers_arrive_whole_while_small_ones_are_served_alongside(
    gateway: RunningGateway,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:

        async def ask(model: str) -> httpx.Response:
            messages = [{"role": "user", "content": "hi"}]
            return await client.post(
                "/v1/chat/completions", json={"model": f"bulk/{model}", "messages": messages}
            )

        answers = await asyncio.gather(
            *(ask(model) for model in ["large", "tiny", "large", "edge", "tiny", "large"])
        )

    for model, response in zip(["large", "tiny", "large", "edge", "tiny", "large"], answers, strict=True):
        assert response.status_code == 200, response.text[:200]
        data = response.json()
        expected = json.loads(_completion(SIZES[model]))
        assert data["choices"] == expected["choices"]
        assert data["usage"] == expected["usage"]
        assert data["extra_fields"]["provider"] == "bulk"
        assert int(response.headers["content-length"]) == len(response.content)
