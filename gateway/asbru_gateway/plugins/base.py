"""What a plugin sees and may do: the request context, the outcome, and the hook protocols.

A plugin implements any subset of the hooks below; the pipeline checks which ones once, when it is
built, so a plugin without a chunk hook costs nothing per chunk. Hooks get the live
``RequestContext`` (one per client request, slots only, no dict) and must not block the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from asbru_gateway.errors import GatewayError
from asbru_gateway.providers.base import Usage


class RequestContext:
    """One client request as it moves through the gateway. Routing fills in what happened."""

    __slots__ = (
        "attempts",
        "body",
        "endpoint",
        "events_sent",
        "fallbacks",
        "first_token_at",
        "last_event_at",
        "model",
        "provider",
        "request_id",
        "requested_model",
        "response_started",
        "retries",
        "started_at",
        "state",
        "stream",
        "upstream_latency_s",
        "usage",
    )

    def __init__(self, *, request_id: str, endpoint: str, body: dict[str, Any], stream: bool) -> None:
        self.request_id = request_id
        self.endpoint = endpoint
        """``chat`` or ``embeddings``."""
        self.body = body
        """The client's decoded request body (OpenAI format). Pre-hooks may edit it."""
        self.stream = stream
        self.requested_model: str = str(body.get("model", ""))
        self.provider: str | None = None
        """The provider that served (or last failed) the request."""
        self.model: str | None = None
        """The upstream model that served (or last failed) the request."""
        self.started_at = time.perf_counter()
        self.upstream_latency_s: float | None = None
        self.response_started = False
        """True once response headers went to the client: nothing else can be sent instead."""
        self.first_token_at: float | None = None
        """Streams: when the first event was sent to the client (``perf_counter``)."""
        self.last_event_at: float | None = None
        self.events_sent: int = 0
        """Streams: SSE events sent to the client so far."""
        self.attempts = 0
        self.retries = 0
        self.fallbacks = 0
        self.usage: Usage | None = None
        self.state: dict[str, Any] | None = None
        """Scratch space for plugins (created on first use)."""


@dataclass(slots=True)
class Outcome:
    """What the client gets: a body (JSON or, for streams, nothing: chunks went already) or an error."""

    status: int
    body: bytes = b""
    error: GatewayError | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class ShortCircuit:
    """A pre-hook's answer that skips routing: a full response (cache hit) or an error (denied)."""

    outcome: Outcome


@runtime_checkable
class PreHook(Protocol):
    name: str

    async def pre_request(self, ctx: RequestContext) -> ShortCircuit | None: ...


@runtime_checkable
class PostHook(Protocol):
    name: str

    async def post_response(self, ctx: RequestContext, outcome: Outcome) -> Outcome | None:
        """Return a replacement outcome, or None to keep it. Streams: called once they end, body empty."""
        ...


@runtime_checkable
class ChunkHook(Protocol):
    name: str

    def on_chunk(self, ctx: RequestContext, event: bytes) -> bytes | None:
        """Each OpenAI SSE event on its way to the client; return a replacement or None to keep it."""
        ...


@runtime_checkable
class Closeable(Protocol):
    async def aclose(self) -> None: ...
