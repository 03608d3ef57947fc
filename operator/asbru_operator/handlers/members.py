"""Shared shape of the provider/route/plugin handlers: on a relevant change, refresh the namespace."""

from __future__ import annotations

from typing import Any

from asbru_operator.context import context_of
from asbru_operator.members import refresh_namespace, spec_fingerprint


async def on_member_event(kind: str, memo: Any, event: Any) -> None:
    """Refresh when the object's spec or labels changed or it went away; ignore status-only events."""
    body = event.get("object") or {}
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    gone = event.get("type") == "DELETED" or bool(meta.get("deletionTimestamp"))
    ctx = context_of(memo)
    if ctx.changed(kind, namespace, name, None if gone else spec_fingerprint(body)) or gone:
        await refresh_namespace(ctx, namespace)
