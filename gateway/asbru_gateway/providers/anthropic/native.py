"""Anthropic Messages pass-through: the client's own body out, Anthropic's own answer back.

When an Anthropic-dialect client (the ``anthropic`` SDK, ``ChatAnthropic``) reaches an Anthropic
provider, nothing is translated: the body goes out with only ``model`` rewritten (tools a plugin
added appended in Anthropic's shape, ``stream`` set to what the gateway does), so fields the gateway
does not model (``cache_control``, ``thinking``, ``metadata``, beta fields) arrive untouched. The
answer comes back as it was sent, read only for usage and for being what it claims to be:

- JSON: a ``message`` object (or, for ``count_tokens``, an object with ``input_tokens``);
- streams: events forwarded as they came, ``message_stop`` ending the stream. The first event and
  every event that carries something to read (``message_start`` and ``message_delta`` with the
  usage, ``message_stop``, ``error``, anything unexpected) are JSON-parsed, and garbage is a
  protocol error, never forwarded. The content events in between (``content_block_*``, ``ping``),
  most of a stream, are checked by their framing only (one ``event:`` line, one ``data: {...}``
  line): parsing each would cost ~12 k instructions, the framing check ~1 k (as for OpenAI).
  An ``error`` event is not forwarded (it could quote something the client should not see): it
  becomes the decoder's ``error`` and the relay renders it.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.formats import ANTHROPIC_COUNT_TOKENS, ANTHROPIC_MESSAGES
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError, UpstreamProtocolError
from asbru_gateway.providers.anthropic.errors import stream_error
from asbru_gateway.providers.anthropic.request import anthropic_tool
from asbru_gateway.providers.anthropic.response import TokenCounts, counts_of
from asbru_gateway.providers.sse import SSEBuffer, parse_event

NATIVE_FORMATS = frozenset({ANTHROPIC_MESSAGES, ANTHROPIC_COUNT_TOKENS})
PATHS = {ANTHROPIC_MESSAGES: "messages", ANTHROPIC_COUNT_TOKENS: "messages/count_tokens"}


def native_body(
    format: str, body: dict[str, Any], model: str, *, stream: bool, extra_tools: list[Any]
) -> bytes:
    """The client's body with the upstream model, plugins' tools, and the gateway's stream flag."""
    out = dict(body)
    out["model"] = model
    if extra_tools:
        added = [anthropic_tool(tool, f"extra_tools[{index}]") for index, tool in enumerate(extra_tools)]
        out["tools"] = [*(body.get("tools") or ()), *added]
    if format == ANTHROPIC_MESSAGES and (stream or "stream" in out):
        out["stream"] = stream
    return orjson.dumps(out)


def native_reply(format: str, body: bytes) -> Reply:
    """A 2xx body as a ``Reply`` in ``format`` (bytes kept for the client), with its usage."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream answered with a body that is not JSON") from None
    if format == ANTHROPIC_COUNT_TOKENS:
        if not isinstance(data, dict) or not _is_count(data.get("input_tokens")):
            raise UpstreamProtocolError("upstream answered count_tokens without input_tokens")
        return Reply(body, data=data, format=format)
    if (
        not isinstance(data, dict)
        or data.get("type") != "message"
        or not isinstance(data.get("content"), list)
    ):
        raise UpstreamProtocolError("upstream answered with JSON that is not an Anthropic message")
    counts = counts_of(data)
    return Reply(body, data=data, format=format, usage=counts.usage() if counts else None)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class AnthropicPassthroughDecoder:
    """Forwards an Anthropic stream event by event, after checking each; reads usage on the way."""

    __slots__ = ("_checked", "_counts", "_sse", "done", "error", "failed", "usage")
    format = ANTHROPIC_MESSAGES

    def __init__(self) -> None:
        self._sse = SSEBuffer()
        self._counts = TokenCounts()
        self._checked = False
        """An event has been parsed whole: from then on content events are checked by framing only."""
        self.done = False
        self.failed = False
        self.error: GatewayError | None = None
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> list[StreamItem]:
        out: list[bytes] = []
        for raw in self._sse.raw_events(data):
            if self.done or self.failed:
                break  # nothing may follow message_stop or an error
            if self._checked and raw.startswith(_PLAIN) and raw.endswith(b"}") and raw.count(b"\n") == 1:
                out.append(raw)  # well framed, nothing to read in it: forwarded unparsed
                continue
            event = self._event(raw)
            if event is not None:
                out.append(event)
        return [b"\n\n".join(out) + b"\n\n"] if out else []

    def finish(self) -> list[StreamItem]:
        rest = self._sse.rest()
        if not rest or self.done or self.failed:
            return []
        event = self._event(rest)
        return [event + b"\n\n"] if event is not None else []

    def _event(self, raw: bytes) -> bytes | None:
        """The event to forward (starting ``event:``, without its blank line), or None (comments, errors)."""
        data = _data(raw)
        if not data:
            return None  # comments and data-less keep-alives carry nothing
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._fail(UpstreamProtocolError("upstream sent a stream event that is not JSON"))
            return None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str):
            self._fail(UpstreamProtocolError("upstream sent a stream event without a type"))
            return None
        if kind == "error":
            self._fail(stream_error(payload.get("error")))
            return None
        if kind == "message_start":
            message = payload.get("message")
            self._record(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._record(payload.get("usage"))
        elif kind == "message_stop":
            self.done = True
        self._checked = True
        if raw.startswith(b"event:"):
            return raw
        # Data-only framing, or a comment line first: re-framed with its name first, which is how
        # clients dispatch on it and how the dialect tells Anthropic events from core ones.
        return b"event: " + kind.encode() + b"\ndata: " + data

    def _record(self, raw: object) -> None:
        if isinstance(raw, dict):
            self._counts.update(raw)
            self.usage = self._counts.usage()

    def _fail(self, error: GatewayError) -> None:
        """Stop here: nothing of a stream that went wrong reaches the client after this point."""
        self.failed = True
        self.error = error


_PLAIN = (
    b"event: content_block_delta\ndata: {",
    b"event: content_block_start\ndata: {",
    b"event: content_block_stop\ndata: {",
    b"event: ping\ndata: {",
)
"""Events with nothing for the gateway to read, in Anthropic's own framing."""


def _data(raw: bytes) -> bytes:
    """An event's ``data`` payload; Anthropic's own two-line framing without the general parser."""
    newline = raw.find(b"\n")
    if (
        raw.startswith(b"event:")
        and raw.startswith(b"data: ", newline + 1)
        and raw.find(b"\n", newline + 1) < 0
    ):
        return raw[newline + 7 :]
    return parse_event(raw).data
