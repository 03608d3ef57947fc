"""A counter store shared by the governance plugin instances of successive config revisions.

A new revision's instance takes over its predecessor's store when the store settings are unchanged
(same Redis URL, password and options; or in-process both times): the connection stays open and the
counts stay. Reference-counted, because old and new instance serve side by side while the old
revision drains; the last one to stop closes it.
"""

from __future__ import annotations

from asbru_gateway.config.governance import RedisConfig
from asbru_gateway.governance import metrics as gov_metrics
from asbru_gateway.governance.redis_store import RedisStore, redis_fingerprint
from asbru_gateway.governance.store import CounterStore, MemoryStore


class SharedStore:
    def __init__(self, store: CounterStore) -> None:
        self.store = store
        self._refs = 1

    @classmethod
    async def take(
        cls, redis: tuple[RedisConfig, str, str | None] | None, previous: SharedStore | None
    ) -> SharedStore:
        """The predecessor's store if it fits these settings (one more reference), else a new one."""
        wanted = redis_fingerprint(*redis) if redis is not None else MemoryStore.fingerprint
        if previous is not None and previous._refs > 0 and previous.store.fingerprint == wanted:
            previous._refs += 1
            return previous
        store: CounterStore = RedisStore(*redis) if redis is not None else MemoryStore()
        gov_metrics.STORE_UP.set(1)
        await store.start()
        return cls(store)

    async def release(self) -> None:
        self._refs -= 1
        if self._refs == 0:
            await self.store.close()
