"""What every handler shares, injected through kopf's ``memo`` rather than module globals."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from asbru_operator.kubeapi import KubeApi, KubeApiError
from asbru_operator.probe import PodUrl, pod_admin_url, pod_ip_url

DEFAULT_IMAGE = os.environ.get("ASBRU_GATEWAY_IMAGE", "ghcr.io/asbru-dev/asbru:0.1.0")
MEMO_KEY = "asbru"


@dataclass
class OperatorContext:
    """Shared clients and per-gateway locks of one operator process.

    The locks serialise everything that writes one gateway's objects or status (its own handlers,
    Secret and provider events, the probe loop): each of them reads fresh state under the lock,
    so a slow writer can never overwrite a newer render with an older one.
    """

    api: KubeApi
    default_image: str = DEFAULT_IMAGE
    pod_url: PodUrl = pod_ip_url
    admin_url: PodUrl = pod_admin_url
    """Where a gateway pod's management API is (governance usage for key and team status)."""
    probe_timeout_s: float = 1.0
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _fingerprints: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    _probe_session: aiohttp.ClientSession | None = None
    _closed: bool = False
    _refreshing: set[str] = field(default_factory=set)
    _dirty: set[str] = field(default_factory=set)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def changed(self, kind: str, namespace: str, name: str, fingerprint: bytes | None) -> bool:
        """Whether an object's relevant content differs from the last time (None: it is gone)."""
        key = (kind, namespace, name)
        if fingerprint is None:
            return self._fingerprints.pop(key, None) is not None
        if self._fingerprints.get(key) == fingerprint:
            return False
        self._fingerprints[key] = fingerprint
        return True

    async def coalesced(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` for ``key`` once at a time; calls arriving meanwhile fold into one more run.

        A burst of events (a Helm upgrade touching ten providers) costs two refreshes, not ten.
        """
        if key in self._refreshing:
            self._dirty.add(key)
            return
        self._refreshing.add(key)
        try:
            while True:
                self._dirty.discard(key)
                await work()
                if key not in self._dirty:
                    return
        finally:
            self._refreshing.discard(key)

    def probe_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise KubeApiError(0, "the operator is stopping")
        if self._probe_session is None:
            self._probe_session = aiohttp.ClientSession()
        return self._probe_session

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in the background until ``close`` cancels it (the operator's clean-up)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Cancel background work first (nothing waits for a probe in flight), then close clients."""
        self._closed = True
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._probe_session is not None:
            await self._probe_session.close()
            self._probe_session = None
        await self.api.close()


def context_of(memo: Any) -> OperatorContext:
    """The context kopf hands every handler inside ``memo`` (see ``asbru_operator.cli``)."""
    ctx = memo[MEMO_KEY]
    if not isinstance(ctx, OperatorContext):
        raise TypeError(f"memo[{MEMO_KEY!r}] is not an OperatorContext")
    return ctx
