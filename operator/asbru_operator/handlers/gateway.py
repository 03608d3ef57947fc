"""LLMGateway: render and apply on create/update/resume; one operator-wide loop probes and resyncs.

No handler here needs a finalizer (the operator has no deletion logic: owned objects go by owner
reference), so none is put on an LLMGateway and deleting one never waits for the operator. The
probe loop learns which gateways exist from a kopf index, which needs no finalizer either; see
``asbru_operator.probe_loop`` for why it is not a per-gateway daemon.
"""

from __future__ import annotations

from typing import Any

import kopf

from asbru_operator.context import context_of
from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.probe_loop import GatewayKey, ProbeLoop
from asbru_operator.reconcile import reconcile_gateway

RESOURCE = (GROUP, VERSION, "llmgateways")
RETRY_DELAY_S = 10.0
INDEX = "asbru_gateways"


async def reconcile(*, memo: Any, namespace: str | None, name: str, **_: Any) -> None:
    """Render and apply; a missing Secret or an invalid config is retried, never a crash.

    Returns nothing: the status is written by the reconciler (kopf would store a return value
    under ``status.reconcile``, a field the CRD schema does not have).
    """
    outcome = await reconcile_gateway(context_of(memo), str(namespace), name)
    if outcome.retry is not None:
        raise kopf.TemporaryError(outcome.retry, delay=RETRY_DELAY_S)


def asbru_gateways(*, namespace: str | None, name: str, **_: Any) -> dict[GatewayKey, bool]:
    """Index: every LLMGateway the operator sees, by (namespace, name); kopf drops deleted ones."""
    return {(str(namespace), name): True}


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
    kopf.index(*RESOURCE, registry=registry, id=INDEX)(asbru_gateways)

    async def start_probing(*, memo: Any, **kwargs: Any) -> None:
        """Start the probe loop over the live index (kopf passes indices to start-up handlers too)."""
        gateways: kopf.Index[GatewayKey, bool] = kwargs[INDEX]
        ctx = context_of(memo)
        probe_loop = ProbeLoop(
            ctx,
            gateways.keys,
            interval_s=probe_interval_s,
            resync_interval_s=resync_interval_s,
            usage_interval_s=usage_interval_s,
        )
        ctx.spawn(probe_loop.run(), name="asbru-probe-loop")

    kopf.on.startup(registry=registry, id="probe-loop")(start_probing)
