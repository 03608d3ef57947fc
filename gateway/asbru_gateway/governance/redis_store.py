"""Counters in Redis: exact across every replica and worker that shares it.

One ``EVALSHA`` per reservation (all limits of a request in one atomic script: one round trip
before the upstream call), one per settlement (after the response, sent without waiting for the
reply). Both go over one pipelined connection (``redis_client``), which the store keeps open; the
store itself outlives config revisions while its settings are unchanged (``fingerprint``), so a
reload neither reconnects nor forgets anything. Keys are computed here and passed to the scripts;
Redis Cluster is not supported (a standalone or primary/replica Redis is).

Down or slow (connect or reply over ``timeout_ms``): the call raises ``StoreUnavailableError``
and Redis is skipped for ``retry_interval_s`` (no request waits on a dead server), then the next
request tries again: recovery needs no restart. The failure policy is the caller's business.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from asbru_gateway.config.governance import RedisConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.governance import lua
from asbru_gateway.governance import metrics as gov_metrics
from asbru_gateway.governance.accounting import FIELDS, SLACK_MS, WINDOWS, totals, usage_key
from asbru_gateway.governance.limits import Limit
from asbru_gateway.governance.redis_client import PipelinedRedis
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
        self._client = PipelinedRedis(url, password, config.timeout_ms / 1000, (lua.RESERVE, lua.SETTLE))
        self._reserve = self._client.sha(lua.RESERVE)
        self._settle = self._client.sha(lua.SETTLE)
        self._down_until = 0.0
        self.up = True

    async def start(self) -> None:
        """Try once; a Redis that is down at start is not fatal (the failure policy applies)."""
        try:
            await self._call(lambda: self._client.call("PING"))
        except StoreUnavailableError:
            log.warning("Redis is unreachable at start; retrying every %g s", self.config.retry_interval_s)

    async def close(self) -> None:
        await self._client.close()

    async def reserve(self, limits: tuple[Limit, ...], amounts: list[int], now_ms: int) -> Decision:
        result = await self._run(limits, amounts, now_ms, "1")
        return Decision(bool(result[0]), [int(value) for value in result[3:]], int(result[1]), int(result[2]))

    async def usage(self, limits: tuple[Limit, ...], now_ms: int) -> list[int]:
        result = await self._run(limits, [0] * len(limits), now_ms, "0")
        return [int(value) for value in result[3:]]

    async def totals(self, scope: str, now_ms: int) -> dict[str, dict[str, float]]:
        counts = {}
        for window in WINDOWS:
            key = self._prefix + usage_key(scope, window, now_ms)
            raw = await self._call(lambda key=key: self._hmget(key))  # type: ignore[misc]
            counts[window.name] = [int(value or 0) for value in raw]
        return totals(counts)

    async def _hmget(self, key: str) -> Any:
        return await self._client.call("HMGET", key, *FIELDS)

    async def settle(self, settlement: Settlement) -> None:
        keys: list[str] = []
        args: list[Any] = []
        for limits, deltas, reserved_ms in settlement.corrections:
            for limit, delta in zip(limits, deltas, strict=True):
                if delta:
                    keys.append(self._key(limit, reserved_ms))
                    args += [delta, "" if limit.window.calendar else slot(limit, reserved_ms)]
        corrections = len(keys)
        at_ms = settlement.at_ms
        for scope in settlement.scopes:
            keys += [self._prefix + usage_key(scope, window, at_ms) for window in WINDOWS]
        if not keys:
            return
        ttls = [window.period(at_ms)[1] + SLACK_MS for window in WINDOWS]
        tail = [*ttls, 1, settlement.tokens, settlement.micro_usd]
        command = ("EVALSHA", self._settle, len(keys), *keys, corrections, *args, *tail)
        await self._call(lambda: self._client.send(*command))

    async def _run(self, limits: tuple[Limit, ...], amounts: list[int], now_ms: int, mode: str) -> list[Any]:
        keys: list[str] = []
        args: list[Any] = [now_ms, mode]
        for limit, amount in zip(limits, amounts, strict=True):
            window = limit.window
            keys.append(self._key(limit, now_ms))
            if window.calendar:
                args += [limit.quota, amount, 0, window.period(now_ms)[1] + CALENDAR_SLACK_MS]
            else:
                args += [limit.quota, amount, window.bucket_ms, (BUCKETS + 1) * window.bucket_ms + 1000]
        result: list[Any] = await self._call(lambda: self._evalsha(self._reserve, keys, args))
        return result

    async def _evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._client.call("EVALSHA", sha, len(keys), *keys, *args)
        except RedisError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
            script = self._client.scripts[sha]  # flushed by someone: load it again, once
            await self._client.call("SCRIPT", "LOAD", script)
            return await self._client.call("EVALSHA", sha, len(keys), *keys, *args)

    def _key(self, limit: Limit, at_ms: int) -> str:
        if limit.window.calendar:
            return f"{self._prefix}{limit.counter_id}:{slot(limit, at_ms)}"
        return self._prefix + limit.counter_id

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
            raise StoreUnavailableError(f"Redis failed: {type(error).__name__}") from None
        if not self.up:
            log.info("Redis is reachable again")
            self.up = True
            self._down_until = 0.0
            gov_metrics.STORE_UP.set(1)
        return result
