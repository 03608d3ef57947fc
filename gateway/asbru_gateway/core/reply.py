"""What comes back from a provider: a complete ``Reply``, or ``StreamItem``s of a stream.

Both carry their wire format (``formats``): ``CORE`` for the core schema, or a dialect's own format
when the provider answered a pass-through request. The client's dialect renders them; it forwards
bytes of its own format unchanged and translates core ones.

A ``Reply`` holds its body as bytes, as a decoded dict, or both, and converts lazily: a pass-through
answer is never parsed unless someone reads ``data``; a translated one is never serialised twice.
"""

from __future__ import annotations

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
    """A complete (non-streaming) answer in ``format``, with the usage it reported."""

    __slots__ = ("_body", "_data", "format", "usage")

    def __init__(
        self,
        body: bytes | None = None,
        *,
        data: dict[str, Any] | None = None,
        format: str = CORE,
        usage: Usage | None = None,
    ) -> None:
        if body is None and data is None:
            raise ValueError("a Reply needs a body or data")
        self._body = body
        self._data = data
        self.format = format
        self.usage = usage

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = orjson.dumps(self._data)
        return self._body

    @property
    def data(self) -> dict[str, Any]:
        """The body decoded (once). Raises ``UpstreamProtocolError`` if it is not a JSON object."""
        if self._data is None:
            try:
                data = orjson.loads(self._body or b"")
            except orjson.JSONDecodeError:
                raise UpstreamProtocolError("upstream answered with a body that is not JSON") from None
            if not isinstance(data, dict):
                raise UpstreamProtocolError("upstream answered with JSON that is not an object")
            self._data = data
        return self._data

    def replace_data(self, data: dict[str, Any]) -> None:
        """Swap in an edited answer (a plugin's post-hook); the bytes are re-serialised on demand."""
        self._data = data
        self._body = None
