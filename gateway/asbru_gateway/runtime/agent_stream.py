"""Agent mode with ``stream: true``: the answer streams as it arrives, tool steps as they happen.

Beyond Bifrost, whose agent mode does not stream. Each model call of the loop is a stream through
the dispatcher; this ``AgentStream`` is what the relay renders, in the client's dialect:

- text (and reasoning) deltas are forwarded at once, from every round: a model that says something
  before calling a tool is heard as it says it;
- tool-call deltas are held while they arrive. When the round ends and every call is auto-executed,
  they are not shown as calls (the client has nothing to do): instead, each call is shown as a step,
  ``{"choices": [], "mcp_call": {...}}`` with ``status: "in_progress"`` when it starts and
  ``"completed"`` / ``"failed"`` (with ``output`` or ``error``) when it ends, and the next round
  follows. A round that calls a tool the gateway does not run, or that a limit stops, hands the held
  deltas to the client as they came (then a step ``status: "incomplete"`` naming the limit);
- finish reasons and usage are held to the end: the client sees one finish, and, when it asked for
  usage, one usage chunk with the sum of every round.

How a step looks in each dialect (the renderers do it): OpenAI chat, the chunk as it is (SDKs keep
``mcp_call`` as an extra field of a chunk with no choices); Anthropic, ``mcp_tool_use`` and
``mcp_tool_result`` content blocks (Anthropic's own MCP connector blocks); Gemini, ``toolCall`` and
``toolResponse`` parts (Gemini's server-side tool parts: the client is not to execute them);
Responses, its own ``mcp_call`` output items and ``response.mcp_call.*`` events; legacy completions,
the chunk as it is (a ``text_completion`` chunk with no choices).
"""

from __future__ import annotations

from typing import Any, cast

from asbru_gateway.core.chunks import STEP_KEY, core_chunks
from asbru_gateway.core.formats import CORE
from asbru_gateway.core.reply import StreamItem
from asbru_gateway.core.schema import Chunk
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import DeadlineExceededError, GatewayError
from asbru_gateway.routing.dispatch import UpstreamStream
from asbru_gateway.runtime.agent import AgentLoop, usage_json

JSON = dict[str, Any]


class _Call:
    """One tool call of the round, assembled from its deltas."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments = ""

    def add(self, delta: JSON) -> None:
        if isinstance(delta.get("id"), str) and delta["id"]:
            self.id = delta["id"]
        function = delta.get("function")
        if isinstance(function, dict):
            if isinstance(function.get("name"), str) and function["name"]:
                self.name = function["name"]
            if isinstance(function.get("arguments"), str):
                self.arguments += function["arguments"]

    def as_core(self) -> JSON:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class AgentStream:
    """An ``EventSource`` over the rounds of one agent loop."""

    format = CORE

    def __init__(self, loop: AgentLoop) -> None:
        self._loop = loop
        self._upstream: UpstreamStream | None = None
        self.first: list[StreamItem] = []
        self._identity: JSON = {}
        self._calls: dict[int, _Call] = {}
        self._held: list[Chunk] = []
        self._finish: Chunk | None = None
        self._text: list[str] = []
        self._handed_over = False
        self._wants_usage = False
        self._pending: list[list[StreamItem]] = []
        self._round: list[JSON] | None = None
        self._next_round = False
        self._ended = False

    @classmethod
    async def open(cls, loop: AgentLoop) -> AgentStream:
        """The first round, started: errors before its first event are the request's errors."""
        stream = cls(loop)
        await stream._start_round()
        assert stream._upstream is not None
        stream.first = stream._take(stream._upstream.first)
        return stream

    # --- EventSource ------------------------------------------------------------------------------

    def __aiter__(self) -> AgentStream:
        return self

    async def __anext__(self) -> list[StreamItem]:
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._round is not None:
                await self._run_round()
                continue
            if self._next_round:
                self._next_round = False
                await self._start_round()
                assert self._upstream is not None
                first = self._take(self._upstream.first)
                if first:
                    return first
                continue
            upstream = self._upstream
            if upstream is None or self._ended:
                raise StopAsyncIteration
            try:
                items = await upstream.__anext__()
            except StopAsyncIteration:
                await self._round_ended(upstream)
                continue
            out = self._take(items)
            if out:
                return out

    @property
    def done(self) -> bool:
        return self._ended and (self._upstream is None or self._upstream.done)

    @property
    def usage(self) -> Usage:
        return self._loop.usage

    @property
    def error(self) -> GatewayError | None:
        return self._upstream.error if self._upstream is not None else None

    def release(self) -> None:
        if self._upstream is not None:
            self._upstream.release()

    # --- one round --------------------------------------------------------------------------------

    async def _start_round(self) -> None:
        loop = self._loop
        try:
            self._upstream = await loop.snapshot.dispatcher.stream(loop.request, loop.plan)
        except DeadlineExceededError:
            raise loop.time_limit() from None
        self._calls, self._held, self._finish, self._text = {}, [], None, []

    def _take(self, items: list[StreamItem]) -> list[StreamItem]:
        """What of these items the client sees now."""
        out: list[StreamItem] = []
        for chunk in core_chunks(items):
            self._chunk(chunk, out)
        return out

    def _chunk(self, chunk: Chunk, out: list[StreamItem]) -> None:
        if not self._identity:
            self._identity = {key: value for key, value in chunk.items() if key in _IDENTITY}
        if chunk.get("usage") is not None:
            self._wants_usage = True  # the client asked for usage: it gets the sum, once, at the end
            chunk = {**chunk, "usage": None}
        choices = chunk.get("choices")
        if not choices or not isinstance(choices[0], dict):
            return
        choice: JSON = choices[0]  # type: ignore[assignment]
        if choice.get("finish_reason") is not None:
            self._finish = _with_delta(chunk, {}, choice["finish_reason"], self._identity)
        delta = choice.get("delta")
        if not isinstance(delta, dict) or not delta:
            return
        if self._handed_over:
            out.append(_with_delta(chunk, delta, None, self._identity))
            return
        if isinstance(delta.get("content"), str):
            self._text.append(delta["content"])
        calls = delta.get("tool_calls")
        if not calls:
            out.append(_with_delta(chunk, delta, None, self._identity))
            return
        self._hold(_with_delta(chunk, {"tool_calls": calls}, None, self._identity), calls, out)
        rest = {key: value for key, value in delta.items() if key != "tool_calls"}
        if any(value for key, value in rest.items() if key != "role"):  # text beside the call
            out.append(_with_delta(chunk, rest, None, self._identity))

    def _hold(self, chunk: Chunk, calls: list[Any], out: list[StreamItem]) -> None:
        self._held.append(chunk)
        for delta in calls:
            if isinstance(delta, dict):
                index = delta.get("index", 0)
                call = self._calls.setdefault(index if isinstance(index, int) else 0, _Call())
                call.add(delta)
                if call.name and call.name not in self._loop.offer.auto and not self._handed_over:
                    self._hand_over(out)  # a call the client runs: the round is the client's

    def _hand_over(self, out: list[StreamItem]) -> None:
        self._handed_over = True
        out.extend(self._held)
        self._held = []

    async def _round_ended(self, upstream: UpstreamStream) -> None:
        loop = self._loop
        self._loop.usage.add(upstream.usage)
        if upstream.error is not None:
            self._ended = True  # the relay renders the error
            return
        if not self._calls or self._handed_over:
            self._finish_stream()
            return
        calls = [call.as_core() for _, call in sorted(self._calls.items())]
        if not loop.runs_all(calls) or not loop.may_continue():
            out: list[StreamItem] = []
            self._hand_over(out)
            if loop.stopped:
                out.extend(self._step(item) for item in loop.stop(calls))
            self._pending.append(out)
            self._finish_stream()
            return
        upstream.release()
        loop.add_assistant("".join(self._text), calls)
        self._round = calls
        self._pending.append([self._step(loop.as_step(call, None, "in_progress")) for call in calls])

    async def _run_round(self) -> None:
        calls, self._round = self._round or [], None
        results = await self._loop.execute(calls)
        self._pending.append([self._step(item) for item in self._loop.add_results(results)])
        self._next_round = True

    def _finish_stream(self) -> None:
        tail: list[StreamItem] = []
        if self._finish is not None:
            tail.append(self._finish)
        if self._wants_usage:
            tail.append(cast(Chunk, {**self._identity, "choices": [], "usage": usage_json(self._loop.usage)}))
        if tail:
            self._pending.append(tail)
        self._loop.request.usage = self._loop.usage
        self._ended = True

    def _step(self, item: JSON) -> Chunk:
        return cast(Chunk, {**self._identity, "choices": [], STEP_KEY: item})


_IDENTITY = ("id", "object", "created", "model")


def _with_delta(chunk: Chunk, delta: JSON, finish: Any, identity: JSON) -> Chunk:
    """``chunk`` with its first choice's delta and finish reason replaced, usage left out, and the
    first round's id (one answer, one id, however many model calls made it)."""
    choice = dict(chunk["choices"][0])
    choice["delta"] = delta
    choice["finish_reason"] = finish
    out: JSON = {key: value for key, value in chunk.items() if key != "usage"}
    out.update(identity)
    out["choices"] = [choice]
    return cast(Chunk, out)
