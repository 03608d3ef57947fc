"""MCP tools in a chat request: added to what the model is offered; agent mode when auto-executed.

The engine hands a chat request here when its snapshot's MCP hub offers it tools (``McpHub.offer``:
the caller's tools, narrowed by its headers). They are added to the request, and every provider path
sends them (the core body's ``tools``, and pass-through bodies in their own format). When none of
them is auto-executed, that is all: the request is dispatched as any other, and the model's tool
calls go to the client, which may run them with ``POST /v1/mcp/tool/execute``. When some are, the
gateway runs the loop itself (``agent``; streams: ``agent_stream``).

A legacy completion (``mcp.hub.TEXT_ONLY_DIALECTS``) is offered only auto-executed tools, and only
when it is translated anyway: a provider that takes it as it is (OpenAI's ``/completions``, whose
model may not chat at all) gets it unchanged, with no tools, as without MCP.
"""

from __future__ import annotations

from asbru_gateway.core.request import LLMRequest
from asbru_gateway.mcp.hub import TEXT_ONLY_DIALECTS, Offer
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.routing.plan import Plan
from asbru_gateway.runtime.agent import AgentLoop
from asbru_gateway.runtime.agent_stream import AgentStream
from asbru_gateway.runtime.gateway import Snapshot


async def answer(snapshot: Snapshot, request: LLMRequest, plan: Plan, offer: Offer) -> Outcome:
    """The outcome of a chat request that is offered MCP tools."""
    if request.dialect in TEXT_ONLY_DIALECTS and _taken_as_it_is(snapshot, request, plan):
        return await _dispatch(snapshot, request, plan)
    request.add_tools(offer.tools)
    if not offer.auto:
        return await _dispatch(snapshot, request, plan)
    assert snapshot.mcp is not None
    loop = AgentLoop(snapshot, request, plan, offer, snapshot.mcp)
    request.edit()  # the loop speaks the core schema with the model
    if request.stream:
        return Outcome(200, stream=await AgentStream.open(loop))
    return await loop.run()


async def _dispatch(snapshot: Snapshot, request: LLMRequest, plan: Plan) -> Outcome:
    """The request as any other (the model's tool calls, if any, go to the client)."""
    if request.stream:
        if snapshot.pipeline.has_chunk_hooks:
            request.edit()
        return Outcome(200, stream=await snapshot.dispatcher.stream(request, plan))
    return Outcome(200, reply=await snapshot.dispatcher.call(request, plan))


def _taken_as_it_is(snapshot: Snapshot, request: LLMRequest, plan: Plan) -> bool:
    """Whether the first candidate's provider takes the client's body in its own format."""
    runtime = snapshot.pools.get(plan.candidates[0].provider)
    return (
        runtime is not None and request.native is not None and request.native_format in runtime.native_formats
    )
