"""One operator-wide loop that probes every known gateway's pods, and re-renders each now and then.

Why not a kopf daemon per LLMGateway: kopf puts a finalizer on every object that has a daemon, so
that it can stop the daemon before the object goes. The operator has no deletion logic at all
(owned objects are garbage-collected through owner references), so that finalizer only made
deleting a gateway, its namespace or the CRDs hang whenever no operator was running, and made
namespace deletion in scoped mode fail once the operator's Role there was gone. This loop needs no
finalizer: it learns which gateways exist from a kopf index (updated from the watch stream, deletions
included) and is one task the operator starts at start-up and cancels at clean-up, so shutdown never
waits for a probe in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from asbru_operator.context import OperatorContext
from asbru_operator.kubeapi import KubeApiError
from asbru_operator.reconcile import probe_gateway, reconcile_gateway
from asbru_operator.virtual_keys import refresh_usage

logger = logging.getLogger(__name__)

GatewayKey = tuple[str, str]
"""(namespace, name) of an LLMGateway."""


class ProbeLoop:
    """Every ``interval_s``: probe each gateway (Programmed); every ``resync_interval_s``: re-render it;
    every ``usage_interval_s``: read its virtual keys' usage into their status (governance).

    The re-render is the safety net for missed events and manual edits of owned objects. Gateways
    are probed concurrently, at most ``concurrency`` at a time, so one slow gateway delays no other.
    """

    def __init__(
        self,
        ctx: OperatorContext,
        gateways: Callable[[], Iterable[GatewayKey]],
        *,
        interval_s: float,
        resync_interval_s: float,
        usage_interval_s: float = 10.0,
        concurrency: int = 8,
    ) -> None:
        self._ctx = ctx
        self._gateways = gateways
        self._interval_s = interval_s
        self._resync_interval_s = resync_interval_s
        self._usage_interval_s = usage_interval_s
        self._slots = asyncio.Semaphore(concurrency)
        self._next_resync: dict[GatewayKey, float] = {}
        self._next_usage: dict[GatewayKey, float] = {}

    async def run(self) -> None:
        """Probe until cancelled (the operator's clean-up cancels it)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.tick(now=started)
            await asyncio.sleep(max(0.0, self._interval_s - (loop.time() - started)))

    async def tick(self, *, now: float) -> None:
        """One round over every gateway known right now."""
        known = sorted(set(self._gateways()))
        for gone in set(self._next_resync) - set(known):
            del self._next_resync[gone]
            self._next_usage.pop(gone, None)
        resync = _due(
            self._next_resync, known, now, self._resync_interval_s, first=now + self._resync_interval_s
        )
        usage = _due(self._next_usage, known, now, self._usage_interval_s, first=now)
        await asyncio.gather(*(self._probe(key, resync=key in resync, usage=key in usage) for key in known))

    async def _probe(self, key: GatewayKey, *, resync: bool, usage: bool) -> None:
        """Probe (and maybe re-render, and read its keys' usage) one gateway; whatever goes wrong
        stays with that gateway."""
        namespace, name = key
        async with self._slots:
            try:
                if resync:
                    await reconcile_gateway(self._ctx, namespace, name)
                await probe_gateway(self._ctx, namespace, name)
                if usage:  # virtual keys' and teams' spend/budget/remaining (governance)
                    await refresh_usage(self._ctx, namespace, name)
            except KubeApiError as error:
                logger.warning("probing LLMGateway %s/%s failed, will retry: %s", namespace, name, error)
            except Exception:  # a bug with one gateway must not end probing for every gateway
                logger.exception("probing LLMGateway %s/%s failed, will retry", namespace, name)


def _due(
    schedule: dict[GatewayKey, float],
    known: Iterable[GatewayKey],
    now: float,
    every_s: float,
    *,
    first: float,
) -> set[GatewayKey]:
    """The gateways whose turn it is (first turn at ``first``), each rescheduled ``every_s`` on."""
    due = set()
    for key in known:
        if now >= schedule.setdefault(key, first):
            schedule[key] = now + every_s
            due.add(key)
    return due
