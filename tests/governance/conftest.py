"""Fixtures: one real redis-server per test module (flushed before each test that uses it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis(redis_module: RedisServer) -> RedisServer:
    if redis_module.process is None:
        redis_module.start()
    redis_module.flush()
    return redis_module
