"""Agent mode: the gateway runs the model's tool calls and asks the model again.

When some of the tools a request is offered are auto-executed (``tool_offer``), the gateway runs the
loop (Bifrost's agent mode): model -> tool calls -> results -> model, until the model answers
without calling a tool, up to ``mcp.agent``'s ``max_depth`` rounds and ``max_time_s`` of wall time.
The loop talks to the model in the core schema (the request is translated, not passed through), and
every model call is one ``Dispatcher`` call: pools, keys, retries, fallbacks, attempt hooks and
telemetry apply to each. The usage of all calls adds up in the answer (``request.usage`` too, for
completion hooks).

A round whose tool calls are not all auto-executed (a client's own tool, an MCP tool without auto-
execute) ends the loop: that answer goes to the client as the model gave it. So does a round that a
limit stops: its calls are returned unexecuted, and ``x-asbru-agent-stopped`` says which limit
(``max_depth``, ``max_time``). ``x-asbru-agent-steps`` counts the rounds run. A model call that
would run past ``max_time_s`` fails with 504 ``agent_time_limit``.

Streams: ``agent_stream``. How tool steps show in each dialect: ``mcp_call`` (below).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import DeadlineExceededError, GatewayError
from asbru_gateway.mcp.hub import McpHub, Offer
from asbru_gateway.mcp.tools import McpTool, ToolOutcome
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.routing.plan import Plan
from asbru_gateway.runtime.gateway import Snapshot

STEPS_HEADER = b"x-asbru-agent-steps"
STOPPED_HEADER = b"x-asbru-agent-stopped"


class AgentTimeLimitError(GatewayError):
    status = 504
    type = "timeout"
    code = "agent_time_limit"


class AgentLoop:
    """One request's loop: its limits, its conversation, its running usage, the tools it may run."""

    def __init__(
        self, snapshot: Snapshot, request: LLMRequest, plan: Plan, offer: Offer, hub: McpHub
    ) -> None:
        self.snapshot = snapshot
        self.request = request
        self.plan = plan
        self.offer = offer
        self.hub = hub
        limits = hub.config.agent
        self.max_depth = limits.max_depth
        self.deadline = request.started_at + limits.max_time_s
        self._parallel = asyncio.Semaphore(limits.max_parallel_calls)
        self.depth = 0
        self.usage = Usage()
        self.stopped: str | None = None
        self.steps: list[dict[str, Any]] = []
        """The tool steps as they ended (``completed``, ``failed``), then, when a limit stopped the
        loop, the calls it left (``incomplete``): what a complete answer shows (``Reply.steps``)."""
        self._request_deadline = request.deadline
        request.deadline = min(request.deadline, self.deadline)

    # --- the non-stream loop ----------------------------------------------------------------------

    async def run(self) -> Outcome:
        while True:
            reply = await self.call_model()
            data = reply.data
            message = _first_message(data)
            calls = message.get("tool_calls") if message else None
            if not message or not calls or not self.runs_all(calls) or not self.may_continue():
                if self.stopped and calls:
                    self.stop(calls)
                return self._final(reply, data)
            self.add_assistant(message.get("content"), calls)
            self.add_results(await self.execute(calls))

    async def call_model(self) -> Reply:
        try:
            reply = await self.snapshot.dispatcher.call(self.request, self.plan)
        except DeadlineExceededError:
            raise self.time_limit() from None
        self.usage.add(reply.usage)
        return reply

    def _final(self, reply: Reply, data: dict[str, Any]) -> Outcome:
        self.request.usage = self.usage
        if self.depth:
            usage = data.get("usage")
            data["usage"] = {**(usage if isinstance(usage, dict) else {}), **usage_json(self.usage)}
            reply.replace_data(data)
            reply.usage = self.usage
        if self.steps:
            reply.steps = self.steps
        return Outcome(200, reply=reply, headers=self.headers())

    # --- shared with the stream -------------------------------------------------------------------

    def runs_all(self, calls: list[Any]) -> bool:
        """Whether every call of a round is one the gateway runs itself."""
        auto = self.offer.auto
        return all(isinstance(call, dict) and _call_name(call) in auto for call in calls)

    def may_continue(self) -> bool:
        """Whether another round fits the limits; if not, records which limit stopped the loop."""
        if self.depth >= self.max_depth:
            self.stopped = "max_depth"
        elif time.perf_counter() >= self.deadline:
            self.stopped = "max_time"
        return self.stopped is None

    def time_limit(self) -> GatewayError:
        if self.request.deadline < self._request_deadline:
            spent = time.perf_counter() - self.request.started_at
            return AgentTimeLimitError(
                f"agent mode ran out of time: {spent:.1f} s after {self.depth} round(s) of tool calls "
                f"(mcp.agent.max_time_s {self.hub.config.agent.max_time_s:g})"
            )
        return DeadlineExceededError("the request's deadline passed during agent mode")

    def add_assistant(self, content: Any, calls: list[Any]) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": content or None, "tool_calls": calls}
        self.request.core.setdefault("messages", []).append(message)

    def add_results(self, results: list[tuple[dict[str, Any], ToolOutcome]]) -> list[dict[str, Any]]:
        """A round's results into the conversation; returns its steps as they ended (kept in ``steps``)."""
        messages = self.request.core.setdefault("messages", [])
        ended: list[dict[str, Any]] = []
        for call, outcome in results:
            messages.append(
                {"role": "tool", "tool_call_id": str(call.get("id", "")), "content": outcome.text}
            )
            ended.append(self.as_step(call, outcome, "failed" if outcome.is_error else "completed"))
        self.depth += 1
        self.steps.extend(ended)
        return ended

    def stop(self, calls: list[Any]) -> list[dict[str, Any]]:
        """The steps of the calls a limit left unexecuted: ``incomplete``, naming the limit (kept in
        ``steps``)."""
        reason = f"agent mode stopped: {self.stopped}"
        left = [self.as_step(call, None, "incomplete", error=reason) for call in calls]
        self.steps.extend(left)
        return left

    def as_step(
        self, call: dict[str, Any], outcome: ToolOutcome | None, status: str, error: str | None = None
    ) -> dict[str, Any]:
        """One call of a round as a step (``step``): started (``in_progress``), ended, or left."""
        tool = self.tool_of(call)
        assert tool is not None  # only rounds the gateway runs have steps
        item = step(str(call.get("id", "")), tool, _arguments_text(call), outcome, status)
        if error is not None:
            item["error"] = error
        return item

    async def execute(self, calls: list[Any]) -> list[tuple[dict[str, Any], ToolOutcome]]:
        """Run one round's calls (at most ``max_parallel_calls`` at once), each within the time left."""
        outcomes = await asyncio.gather(*(self.execute_one(call) for call in calls))
        return list(zip(calls, outcomes, strict=True))

    async def execute_one(self, call: dict[str, Any]) -> ToolOutcome:
        tool = self.offer.by_name[_call_name(call)]
        arguments = parse_arguments(call)
        if isinstance(arguments, str):
            return ToolOutcome.failed(tool.server, tool.name, "error", arguments)
        async with self._parallel:
            remaining = self.deadline - time.perf_counter()
            if remaining <= 0:
                message = f"not run: agent mode's time (max_time_s) ran out before {tool.name!r}"
                return ToolOutcome.failed(tool.server, tool.name, "timeout", message)
            return await _bounded_call(self.hub, tool, arguments, remaining, self.request.request_id)

    def tool_of(self, call: dict[str, Any]) -> McpTool | None:
        return self.offer.by_name.get(_call_name(call))

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(STEPS_HEADER, str(self.depth).encode())]
        if self.stopped:
            headers.append((STOPPED_HEADER, self.stopped.encode()))
        return headers


async def _bounded_call(
    hub: McpHub, tool: McpTool, arguments: dict[str, Any], remaining: float, request_id: str
) -> ToolOutcome:
    try:
        async with asyncio.timeout(remaining):
            return await hub.call(tool, arguments, request_id=request_id)
    except TimeoutError:
        message = f"tool {tool.name!r} did not finish within agent mode's remaining time ({remaining:.1f} s)"
        return ToolOutcome.failed(tool.server, tool.name, "timeout", message)


def parse_arguments(call: dict[str, Any]) -> dict[str, Any] | str:
    """A call's arguments as an object, or why they are not one (the model reads the reason)."""
    function = call.get("function")
    raw = function.get("arguments") if isinstance(function, dict) else None
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        arguments = orjson.loads(raw) if isinstance(raw, (str, bytes)) else None
    except orjson.JSONDecodeError:
        return f"the arguments are not valid JSON: {str(raw)[:200]}"
    if not isinstance(arguments, dict):
        return "the arguments must be a JSON object"
    return arguments


def step(
    call_id: str, tool: McpTool, arguments: str, outcome: ToolOutcome | None, status: str
) -> dict[str, Any]:
    """A tool step as the stream shows it (``STEP_KEY``): the Responses API's ``mcp_call`` item."""
    return {
        "type": "mcp_call",
        "id": call_id,
        "server_label": tool.server,
        "name": tool.name,
        "arguments": arguments,
        "status": status,
        "output": None if outcome is None or outcome.is_error else outcome.text,
        "error": outcome.text if outcome is not None and outcome.is_error else None,
    }


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _first_message(data: dict[str, Any]) -> dict[str, Any] | None:
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        return message if isinstance(message, dict) else None
    return None


def _arguments_text(call: dict[str, Any]) -> str:
    function = call.get("function")
    raw = function.get("arguments") if isinstance(function, dict) else None
    if isinstance(raw, str):
        return raw
    return "{}" if raw is None else orjson.dumps(raw).decode()


def _call_name(call: dict[str, Any]) -> str:
    function = call.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""
