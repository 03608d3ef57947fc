"""LLMPlugin: any change of spec or labels re-renders the gateways of its namespace.

An event handler (not create/update/delete) because the object itself needs no bookkeeping: no
diff-base annotation, no finalizer blocking its deletion; a missed event is caught by the resync.
"""

from __future__ import annotations

from typing import Any

import kopf

from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.handlers.members import on_member_event


async def on_event(*, memo: Any, event: Any, **_: Any) -> None:
    await on_member_event("llmplugins", memo, event)


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(GROUP, VERSION, "llmplugins", registry=registry, id="plugin-event")(on_event)
