"""What a plugin sees and may do: the outcome types and the hook protocols (contract v2).

A plugin is one class (one module under ``builtin/``) that implements any subset of the hooks
below; the pipeline checks which ones once, when it is built, so a hook nobody implements costs
nothing per request. The contract itself, clause by clause, is in ``pipeline.py``.

Hooks get the request's ``LLMRequest`` (``core.request``): the typed request (``core`` body, model,
stream flag), the caller's headers (read-only, credentials masked), the presented credential and
``identity``, and what routing filled in (provider, model, key name, usage, cost, timings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from asbru_gateway.core.attempt import Attempt
from asbru_gateway.core.headers import RequestHeaders
from asbru_gateway.core.identity import ClientCredential, Identity
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.core.schema import Chunk
from asbru_gateway.errors import GatewayError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

Headers = list[tuple[bytes, bytes]]


class NoSettings(BaseModel):
    """The settings model of a plugin type that takes none: any setting is a typo."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSource(Protocol):
    """A stream of items as the client's dialect renders them (an upstream's, or a replayed one)."""

    format: str
    first: list[StreamItem]

    @property
    def done(self) -> bool: ...

    @property
    def usage(self) -> Any: ...

    def __aiter__(self) -> AsyncIterator[list[StreamItem]]: ...

    @property
    def error(self) -> GatewayError | None:
        """Why the stream ended early (None after a normal end)."""
        ...

    def release(self) -> None: ...


class ReplayStream:
    """A finished list of core chunks played back as a stream (a cache hit on a stream request)."""

    format = "core"

    def __init__(self, chunks: list[Chunk], usage: Any = None) -> None:
        self.first: list[StreamItem] = list(chunks[:1])
        self._rest: list[StreamItem] = list(chunks[1:])
        self.done = True
        self.usage = usage

    def __aiter__(self) -> ReplayStream:
        return self

    async def __anext__(self) -> list[StreamItem]:
        if not self._rest:
            raise StopAsyncIteration
        rest, self._rest = self._rest, []
        return rest

    @property
    def error(self) -> GatewayError | None:
        return None

    def release(self) -> None:
        return None


@dataclass(slots=True)
class Outcome:
    """What the client gets: a ``reply``, an ``error``, or a ``stream`` (rendered by its dialect)."""

    status: int
    reply: Reply | None = None
    error: GatewayError | None = None
    headers: Headers = field(default_factory=list)
    stream: EventSource | None = None


@dataclass(slots=True)
class ShortCircuit:
    """A pre-hook's answer that skips routing: a reply (cache hit), an error (denied) or a stream."""

    outcome: Outcome

    @classmethod
    def answer(cls, reply: Reply, *, status: int = 200, headers: Headers | None = None) -> ShortCircuit:
        return cls(Outcome(status, reply=reply, headers=headers or []))

    @classmethod
    def fail(cls, error: GatewayError, *, headers: Headers | None = None) -> ShortCircuit:
        return cls(Outcome(error.status, error=error, headers=headers or []))

    @classmethod
    def replay(cls, chunks: list[Chunk], *, headers: Headers | None = None) -> ShortCircuit:
        """Answer a stream request with these core chunks, as a stream in the caller's dialect."""
        return cls(Outcome(200, headers=headers or [], stream=ReplayStream(chunks)))


class PluginBase:
    """Optional base: the class attributes every plugin type declares, with their defaults."""

    Settings: ClassVar[type[BaseModel]] = NoSettings
    """The typed settings model (``extra="forbid"``): a typo is a config error naming the field."""
    fail_open: ClassVar[bool] = True
    """True: a bug in this plugin is logged, counted and skipped. False: the request gets a 503."""

    def __init__(self, name: str, settings: BaseModel) -> None:
        self.name = name
        self.settings = settings

    async def start(self) -> None:
        """Open connections, start tasks. Runs before the revision that needs it starts serving."""

    async def stop(self) -> None:
        """Close what ``start`` opened. Runs after the last request that used this instance ended."""


@runtime_checkable
class PreHook(Protocol):
    name: str

    async def pre_request(self, request: LLMRequest) -> ShortCircuit | None: ...


@runtime_checkable
class AttemptHook(Protocol):
    name: str

    async def before_attempt(self, request: LLMRequest, attempt: Attempt) -> None: ...

    async def after_attempt(self, request: LLMRequest, attempt: Attempt) -> None: ...


@runtime_checkable
class PostHook(Protocol):
    name: str

    async def post_response(self, request: LLMRequest, outcome: Outcome) -> Outcome | None:
        """Non-stream answers (and errors), before they are sent: return a replacement or None."""
        ...


@runtime_checkable
class ChunkHook(Protocol):
    name: str

    def on_chunk(self, request: LLMRequest, chunk: Chunk) -> Chunk | None:
        """Each core chunk of a stream before it is rendered; return a replacement or None."""
        ...


@runtime_checkable
class CompletionHook(Protocol):
    name: str

    async def on_complete(self, request: LLMRequest, outcome: Outcome) -> None:
        """After the response's last byte went out (logging, cost, metrics): never delays the client."""
        ...


@runtime_checkable
class Authenticator(Protocol):
    name: str

    async def authenticate(
        self, credential: ClientCredential | None, headers: RequestHeaders
    ) -> Identity | None:
        """Who presents ``credential``, for requests that are not LLM requests (the MCP endpoints).

        Return the ``Identity`` (the same one ``pre_request`` would set), None to have no opinion,
        or raise a ``GatewayError`` (401, 403) to refuse the caller.
        """
        ...


@runtime_checkable
class Lifecycle(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...
