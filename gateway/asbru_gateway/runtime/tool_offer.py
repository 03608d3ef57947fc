"""MCP tools in a chat request: added to what the model is offered; agent mode when auto-executed.

The engine hands a chat request here when its snapshot's MCP hub offers it tools (``McpHub.offer``:
the caller's tools, narrowed by its headers). They are added to the request, and every provider path
sends them (the core body's ``tools``, and pass-through bodies in their own format). When none of
them is auto-executed, that is all: the request is dispatched as any other, and the model's tool
calls go to the client, which may run them with ``POST /v1/mcp/tool/execute``. When some are, the
gateway runs the loop itself (``agent``; streams: ``agent_stream``).
"""

from __future__ import annotations

from asbru_gateway.core.request import LLMRequest
from asbru_gateway.mcp.hub import Offer
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.routing.plan import Plan
from asbru_gateway.runtime.agent import AgentLoop
from asbru_gateway.runtime.agent_stream import AgentStream
from asbru_gateway.runtime.gateway import Snapshot


async def answer(snapshot: Snapshot, request: LLMRequest, plan: Plan, offer: Offer) -> Outcome:
    """The outcome of a chat request that is offered MCP tools."""
    request.add_tools(offer.tools)
    dispatcher = snapshot.dispatcher
    if not offer.auto:
        if request.stream:
            if snapshot.pipeline.has_chunk_hooks:
                request.edit()
            return Outcome(200, stream=await dispatcher.stream(request, plan))
        return Outcome(200, reply=await dispatcher.call(request, plan))
    assert snapshot.mcp is not None
    loop = AgentLoop(snapshot, request, plan, offer, snapshot.mcp)
    request.edit()  # the loop speaks the core schema with the model
    if request.stream:
        return Outcome(200, stream=await AgentStream.open(loop))
    return await loop.run()
