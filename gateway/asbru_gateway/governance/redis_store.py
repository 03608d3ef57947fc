"""Counters in Redis: exact across every replica and worker that shares it.

One ``EVALSHA`` per reservation (all limits of a request in one atomic script, one round trip),
one per settlement (after the response). redis-py's connection pool keeps connections open; the
store itself outlives config revisions while its settings are unchanged (``fingerprint``), so a
reload neither reconnects nor forgets anything.

Down or slow (connect or command over ``timeout_ms``): the call raises ``StoreUnavailableError``
and Redis is skipped for ``retry_interval_s`` (no request waits on a dead server), then the next
request tries again: recovery needs no restart. The failure policy is the caller's business.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from asbru_gateway.config.governance import RedisConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.governance import lua
from asbru_gateway.governance import metrics as gov_metrics
from asbru_gateway.governance.limits import Limit
from asbru_gateway.governance.store import Decision, Settlement, StoreUnavailableError, slot
from asbru_gateway.governance.windows import BUCKETS

log = logging.getLogger(__name__)
CALENDAR_SLACK_MS = 60_000


def redis_fingerprint(config: RedisConfig, url: str, password: str | None) -> str:
    """Settings that need a new connection when they change (the resolved URL and password hashed)."""
    hasher = hashlib.sha256(config.model_dump_json().encode())
    hasher.update(b"\0" + url.encode() + b"\0" + (password or "").encode())
    return "redis:" + hasher.hexdigest()[:16]


def resolve(config: RedisConfig, resolver: SecretResolver) -> tuple[str, str | None]:
    """The URL and password to connect with (secret references resolved)."""
    url = config.url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        url = resolver.resolve(url).reveal()
    password = resolver.resolve(config.password).reveal() if config.password else None
    return url, password


class RedisStore:
    shared = True

    def __init__(self, config: RedisConfig, url: str, password: str | None) -> None:
        self.fingerprint = redis_fingerprint(config, url, password)
        self.config = config
        self._prefix = config.key_prefix + ":"
        timeout_s = config.timeout_ms / 1000
        self._pool = BlockingConnectionPool.from_url(
            url,
            password=password,
            max_connections=config.max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = Redis(connection_pool=self._pool)
        self._reserve = self._redis.register_script(lua.RESERVE)
        self._settle = self._redis.register_script(lua.SETTLE)
        self._down_until = 0.0
        self.up = True

    async def start(self) -> None:
        """Try once; a Redis that is down at start is not fatal (the failure policy applies)."""
        try:
            await self._call(self._redis.ping)
        except StoreUnavailableError:
            log.warning("Redis is unreachable at start; retrying every %g s", self.config.retry_interval_s)

    async def close(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()

    async def reserve(self, limits: tuple[Limit, ...], amounts: list[int], now_ms: int) -> Decision:
        return self._decision(await self._run(self._reserve, limits, amounts, now_ms, "1"))

    async def usage(self, limits: tuple[Limit, ...], now_ms: int) -> list[int]:
        result = await self._run(self._reserve, limits, [0] * len(limits), now_ms, "0")
        return [int(value) for value in result[3:]]

    async def settle(self, settlement: Settlement) -> None:
        keys: list[str] = []
        args: list[Any] = []
        for limits, deltas, reserved_ms in settlement.corrections:
            for limit, delta in zip(limits, deltas, strict=True):
                if delta:
                    keys.append(self._key(limit, reserved_ms))
                    args += [delta, "" if limit.window.calendar else slot(limit, reserved_ms), 0]
        at_ms = settlement.at_ms
        for limit, amount in zip(settlement.records, settlement.amounts or (), strict=True):
            if amount:
                keys.append(self._key(limit, at_ms))
                args += [amount, "", limit.window.period(at_ms)[1] + CALENDAR_SLACK_MS]
        if keys:
            await self._call(lambda: self._settle(keys=keys, args=args))

    async def _run(
        self, script: Any, limits: tuple[Limit, ...], amounts: list[int], now_ms: int, mode: str
    ) -> list[Any]:
        keys: list[str] = []
        args: list[Any] = [now_ms, mode]
        for limit, amount in zip(limits, amounts, strict=True):
            window = limit.window
            keys.append(self._key(limit, now_ms))
            if window.calendar:
                args += [limit.quota, amount, 0, window.period(now_ms)[1] + CALENDAR_SLACK_MS]
            else:
                args += [limit.quota, amount, window.bucket_ms, (BUCKETS + 1) * window.bucket_ms + 1000]
        result: list[Any] = await self._call(lambda: script(keys=keys, args=args))
        return result

    def _key(self, limit: Limit, at_ms: int) -> str:
        if limit.window.calendar:
            return f"{self._prefix}{limit.counter_id}:{slot(limit, at_ms)}"
        return self._prefix + limit.counter_id

    @staticmethod
    def _decision(result: list[Any]) -> Decision:
        used = [int(value) for value in result[3:]]
        return Decision(bool(result[0]), used, int(result[1]), int(result[2]))

    async def _call(self, command: Callable[[], Awaitable[Any]]) -> Any:
        """Run a Redis command; any failure marks Redis down for ``retry_interval_s``."""
        if self._down_until and time.monotonic() < self._down_until:
            raise StoreUnavailableError("Redis is unavailable (retrying shortly)")
        try:
            result = await command()
        except (RedisError, OSError, TimeoutError) as error:
            self._down_until = time.monotonic() + self.config.retry_interval_s
            log.debug("Redis call failed: %r", error)
            if self.up:
                log.warning(
                    "Redis failed (%s); limits follow the %s policy",
                    type(error).__name__,
                    self.config.on_failure.value,
                )
            self.up = False
            gov_metrics.STORE_UP.set(0)
            gov_metrics.STORE_ERRORS.inc()
            # Pooled connections to a server that went away are all dead: drop them, so the first
            # call after ``retry_interval_s`` connects afresh instead of failing on a stale socket.
            await self._pool.disconnect(inuse_connections=False)
            raise StoreUnavailableError(f"Redis failed: {type(error).__name__}") from None
        if not self.up:
            log.info("Redis is reachable again")
            self.up = True
            self._down_until = 0.0
            gov_metrics.STORE_UP.set(1)
        return result
