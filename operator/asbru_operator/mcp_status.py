"""LLMMCPServer status from the gateway pods: how many are connected, tools, protocol, last error.

Each gateway pod reports its MCP servers on ``GET /readyz/mcp`` (unauthenticated, like ``/readyz``).
The gateway's probe tick asks its running pods and writes, for each server it uses, ``connected``
as "N/M" (pods connected of pods answering), the tool count and protocol version of a connected
pod, the last error any pod reports, and a ``Ready`` condition (all answering pods connected).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from asbru_operator import probe
from asbru_operator.context import OperatorContext
from asbru_operator.kubeapi import MCP_SERVERS
from asbru_operator.render import status

Obj = Mapping[str, Any]


async def report(ctx: OperatorContext, namespace: str, pods: Sequence[Obj]) -> None:
    """Ask the running pods of one gateway, then patch each of its servers' status if it changed."""
    running = [pod for pod in pods if probe.is_running(pod)]
    answers = await asyncio.gather(*(_servers(ctx, pod) for pod in running))
    reports = [answer for answer in answers if answer is not None]
    if not reports:
        return
    names = sorted({name for answer in reports for name in answer})
    for name in names:
        body = await ctx.api.get(MCP_SERVERS, namespace, name)
        if body is None:
            continue
        desired = summarize(
            name, reports, generation=body["metadata"].get("generation"), old=body.get("status") or {}
        )
        if status.status_changed(body.get("status") or {}, desired):
            await ctx.api.patch_status(MCP_SERVERS, namespace, name, desired)


def summarize(
    name: str, reports: Sequence[Mapping[str, Any]], *, generation: int | None, old: Mapping[str, Any]
) -> dict[str, Any]:
    """The status of server ``name`` from the pods' reports (pure: tested without a cluster)."""
    seen = [report[name] for report in reports if isinstance(report.get(name), dict)]
    up = [entry for entry in seen if entry.get("connected")]
    errors = [str(entry["last_error"]) for entry in seen if entry.get("last_error")]
    ready = bool(seen) and len(up) == len(seen)
    message = f"{len(up)} of {len(seen)} pods connected" + (f": {errors[0]}" if errors and not ready else "")
    check = status.Check(ready, "Connected" if ready else "NotConnected", message[:1024])
    conditions = status.conditions_for(
        {"Ready": check}, generation=generation, previous=old.get("conditions") or [], now=status.timestamp()
    )
    desired: dict[str, Any] = {
        "conditions": conditions,
        "connected": f"{len(up)}/{len(seen)}",
        "toolCount": int(up[0].get("tool_count") or 0) if up else 0,
        "protocolVersion": up[0].get("protocol_version") if up else None,
        "lastError": errors[0][:1024] if errors else None,
    }
    if generation is not None:
        desired["observedGeneration"] = generation
    return desired


async def _servers(ctx: OperatorContext, pod: Obj) -> dict[str, Any] | None:
    base = ctx.pod_url(pod)
    if base is None:
        return None
    timeout = aiohttp.ClientTimeout(total=ctx.probe_timeout_s)
    try:
        async with ctx.probe_session().get(f"{base}/readyz/mcp", timeout=timeout) as response:
            if response.status != 200:
                return None
            answer = orjson.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return None
    servers = answer.get("servers") if isinstance(answer, dict) else None
    return servers if isinstance(servers, dict) else None
