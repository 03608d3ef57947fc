"""The request engine: from a typed request to an outcome, through plugins, routing and the pools.

What it does, in order: the pre-hooks (which may answer instead), the plan (routes, ``provider/model``,
the request's fallbacks; 404 for an unknown model), dispatch (pool slots, keys, retries, fallbacks,
the first items of a stream; MCP tools and agent mode in ``tool_offer``), and the post-hooks of a
non-stream answer. It knows nothing of HTTP or of the client's dialect: the api layer reads the
request in and renders the outcome back out, then calls ``complete`` once the last byte is sent. A
request that makes several upstream calls (agent mode) does so here, each call through the same
dispatch as any other.

Everything a request touches comes from the snapshot it started with.
"""

from __future__ import annotations

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import COUNT_TOKENS, LLMRequest
from asbru_gateway.errors import GatewayError
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.runtime import tool_offer
from asbru_gateway.runtime.gateway import Snapshot
from asbru_gateway.runtime.token_estimate import estimate_prompt_tokens


async def run(snapshot: Snapshot, request: LLMRequest) -> tuple[Outcome, int]:
    """The outcome for ``request`` and how many plugins were reached (for post/completion hooks).

    Raises only ``CancelledError`` (a departing client or shutdown); every failure a client should
    see is an ``Outcome`` with an error.
    """
    pipeline = snapshot.pipeline
    request.deadline = request.started_at + snapshot.config.server.request_deadline_s
    # Skipping an empty pre stage saves a coroutine per request; the reached count is the same.
    reached, short_circuit = await pipeline.pre(request) if pipeline.has_pre_hooks else (pipeline.size, None)
    if short_circuit is not None:
        outcome = short_circuit.outcome
        if outcome.stream is not None and not request.stream:
            outcome = Outcome(outcome.status, error=_STREAM_TO_NON_STREAM, headers=outcome.headers)
    else:
        try:
            plan = snapshot.routes.plan(request.model, request.fallbacks, request.family)
            offer = snapshot.mcp.offer(request) if snapshot.mcp is not None else None
            if offer is not None:  # MCP tools (and agent mode): runtime.tool_offer
                outcome = await tool_offer.answer(snapshot, request, plan, offer)
            elif request.stream:
                if pipeline.has_chunk_hooks:
                    request.edit()  # chunk hooks see core chunks: translate rather than pass through
                outcome = Outcome(200, stream=await snapshot.dispatcher.stream(request, plan))
            elif request.operation == COUNT_TOKENS and not _counts_natively(
                snapshot, request, plan.candidates
            ):
                outcome = Outcome(200, reply=_estimate(request))
            else:
                outcome = Outcome(200, reply=await snapshot.dispatcher.call(request, plan))
        except GatewayError as error:
            outcome = Outcome(error.status, error=error)
    if outcome.stream is None and pipeline.has_post_hooks:
        outcome = await pipeline.post(request, outcome, reached)
    served = request.upstream_model
    if served:  # inline of RouteTable.model_label: a call less per request
        request.metric_model = served if served in snapshot.routes.configured_models else "other"
    return outcome, reached


_STREAM_TO_NON_STREAM = GatewayError(
    "a plugin answered a non-stream request with a stream", code="plugin_answer_mismatch"
)


def _counts_natively(snapshot: Snapshot, request: LLMRequest, candidates: tuple[object, ...]) -> bool:
    """Whether the first candidate's provider counts tokens itself for the client's format."""
    first = candidates[0]
    runtime = snapshot.pools.get(getattr(first, "provider", ""))
    if runtime is None or request.native is None:
        return False
    request.provider = runtime.name
    request.upstream_model = getattr(first, "model", None)
    return request.native_format in runtime.native_formats


def _estimate(request: LLMRequest) -> Reply:
    """A local token count for a provider that cannot count for this format (documented estimate)."""
    return Reply(data={"input_tokens": estimate_prompt_tokens(request.core)}, format=CORE)
