"""LLMMCPServer: any change of spec or labels re-renders the gateways of its namespace.

An event handler, like the other kinds a gateway consumes; its status is written by the gateway's
probe (``mcp_status``), from what the pods report.
"""

from __future__ import annotations

from typing import Any

import kopf

from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.handlers.members import on_member_event


async def on_event(*, memo: Any, event: Any, **_: Any) -> None:
    await on_member_event("llmmcpservers", memo, event)


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(GROUP, VERSION, "llmmcpservers", registry=registry, id="mcp-server-event")(on_event)
