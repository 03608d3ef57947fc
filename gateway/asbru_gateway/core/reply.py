"""What comes back from a provider: a complete ``Reply``, or ``StreamItem``s of a stream.

Both carry their wire format (``formats``): ``CORE`` for the core schema, or a dialect's own format
when the provider answered a pass-through request. The client's dialect renders them; it forwards
bytes of its own format unchanged and translates core ones.

A ``Reply`` holds its body as bytes, as a decoded dict, or both, and converts lazily: a pass-through
answer is never parsed unless someone reads ``data``; a translated one is never serialised twice.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.schema import Chunk
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import UpstreamProtocolError

StreamItem = bytes | Chunk
"""One item of a decoded stream: ``bytes`` are complete SSE events in the decoder's format
(forwarded as they are when the client speaks that format); a ``Chunk`` is one core chunk."""


class Reply:
    """A complete (non-streaming) answer in ``format``, with the usage it reported.

    ``body`` (bytes) and ``data`` (the decoded object) are slots filled on first read
    (``__getattr__``): a pass-through answer is never parsed unless someone reads ``data``; a
    translated one is never serialised twice.
    """

    body: bytes
    data: dict[str, Any]

    __slots__ = ("body", "data", "format", "steps", "usage")

    def __init__(
        self,
        body: bytes | None = None,
        *,
        data: dict[str, Any] | None = None,
        format: str = CORE,
        usage: Usage | None = None,
    ) -> None:
        if body is not None:
            self.body = body
        elif data is None:
            raise ValueError("a Reply needs a body or data")
        if data is not None:
            self.data = data
        self.format = format
        self.usage = usage
        self.steps: list[dict[str, Any]] | None = None
        """Agent mode: the tool steps the gateway ran to reach this answer, in order, each the
        Responses API's ``mcp_call`` item (``chunks.STEP_KEY``), for dialects that show them in a
        complete answer (Responses: ``mcp_call`` output items)."""

    def __getattr__(self, name: str) -> Any:
        """Only reached for ``body`` or ``data`` not yet set: derived from the other, once."""
        if name == "body":
            body = orjson.dumps(self.data)
            self.body = body
            return body
        if name == "data":
            try:
                data = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                raise UpstreamProtocolError("upstream answered with a body that is not JSON") from None
            if not isinstance(data, dict):
                raise UpstreamProtocolError("upstream answered with JSON that is not an object")
            self.data = data
            return data
        raise AttributeError(name)

    def body_size(self) -> int:
        """The body's length if it is held as bytes (a pass-through answer), else 0; never serialises."""
        try:
            body: bytes = object.__getattribute__(self, "body")  # no __getattr__ fallback this way
        except AttributeError:
            return 0
        return len(body)

    def replace_data(self, data: dict[str, Any]) -> None:
        """Swap in an edited answer (a plugin's post-hook); the bytes are re-serialised on demand."""
        self.data = data
        with contextlib.suppress(AttributeError):
            del self.body
