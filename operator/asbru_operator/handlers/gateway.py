"""LLMGateway: render and apply on create/update/resume; a per-gateway daemon probes and resyncs.

The probe runs in a daemon rather than a timer because kopf can cancel a daemon on shutdown
(``cancellation_timeout``) but must abandon a timer caught mid-run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf

from asbru_operator.context import context_of
from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.kubeapi import KubeApiError
from asbru_operator.reconcile import probe_gateway, reconcile_gateway
from asbru_operator.virtual_keys import refresh_usage

RESOURCE = (GROUP, VERSION, "llmgateways")
RETRY_DELAY_S = 10.0


async def reconcile(*, memo: Any, namespace: str | None, name: str, **_: Any) -> None:
    """Render and apply; a missing Secret or an invalid config is retried, never a crash.

    Returns nothing: the status is written by the reconciler (kopf would store a return value
    under ``status.reconcile``, a field the CRD schema does not have).
    """
    outcome = await reconcile_gateway(context_of(memo), str(namespace), name)
    if outcome.retry is not None:
        raise kopf.TemporaryError(outcome.retry, delay=RETRY_DELAY_S)


async def watch_pods(
    *,
    memo: Any,
    namespace: str | None,
    name: str,
    logger: Any,
    probe_interval_s: float,
    resync_interval_s: float,
    usage_interval_s: float = 10.0,
    **_: Any,
) -> None:
    """Every few seconds: how many pods serve the current revision (Programmed). Now and then:
    a full re-render, the safety net for missed events and manual edits of owned objects."""
    ctx, namespace = context_of(memo), str(namespace)
    next_resync = time.monotonic() + resync_interval_s
    next_usage = time.monotonic()
    while True:
        try:
            if time.monotonic() >= next_resync:
                next_resync = time.monotonic() + resync_interval_s
                await reconcile_gateway(ctx, namespace, name)
            await probe_gateway(ctx, namespace, name)
            if time.monotonic() >= next_usage:  # virtual keys' spend/budget/remaining (governance)
                next_usage = time.monotonic() + usage_interval_s
                await refresh_usage(ctx, namespace, name)
        except KubeApiError as error:
            logger.warning(f"probing failed, will retry: {error}")
        await asyncio.sleep(probe_interval_s)


def register(
    registry: kopf.OperatorRegistry,
    *,
    probe_interval_s: float,
    resync_interval_s: float,
    usage_interval_s: float,
) -> None:
    kopf.on.resume(*RESOURCE, registry=registry)(reconcile)
    kopf.on.create(*RESOURCE, registry=registry)(reconcile)
    kopf.on.update(*RESOURCE, registry=registry)(reconcile)

    async def probe(**kwargs: Any) -> None:
        await watch_pods(
            probe_interval_s=probe_interval_s,
            resync_interval_s=resync_interval_s,
            usage_interval_s=usage_interval_s,
            **kwargs,
        )

    kopf.daemon(*RESOURCE, registry=registry, id="probe", cancellation_timeout=5.0)(probe)
