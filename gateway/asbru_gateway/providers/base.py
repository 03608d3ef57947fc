"""The provider contract: a pure translator between the core schema and one provider's wire format.

A provider is three things, and only the first is per provider:

1. a ``Translator`` (this module's protocol): builds the upstream HTTP request from a core request
   body (``core.schema``), turns the upstream's answer (JSON, stream bytes, error) into a ``Reply``,
   ``StreamItem``s and a ``MappedError``. It does no I/O, holds no connection and never sleeps, so it
   is tested with bytes in, bytes out;
2. a ``ProviderType`` entry in ``registry.py`` (default base URL, env variables, translator factory);
3. the one shared HTTP execution path (``transport.py``), the same for every provider.

Optional capabilities are protocols checked where they are used, never stubs: ``EmbeddingsTranslator``
(``/embeddings``; a translator without it answers 400 ``unsupported_for_provider``) and
``NativeTranslator`` (pass-through: the client's own body in a dialect's format, e.g. Anthropic
Messages to an Anthropic provider, forwarded with only the model rewritten).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError

__all__ = [
    "NO_HEADERS",
    "EmbeddingsTranslator",
    "MappedError",
    "NativeTranslator",
    "Reply",
    "StreamDecoder",
    "Target",
    "Translator",
    "UpstreamRequest",
    "Usage",
]


NO_HEADERS: Mapping[str, str] = MappingProxyType({})
"""No client headers (a request built without a client: tests, agent steps)."""


@dataclass(slots=True)  # not frozen: built per attempt, and frozen __init__ costs ~1 us more
class Target:
    """Where one attempt goes: everything a translator needs to build the upstream request."""

    base_url: str
    """The provider's base URL, without a trailing slash (e.g. ``https://api.openai.com/v1``)."""
    model: str
    """The upstream model name (provider prefix and route aliases already resolved)."""
    api_key: str | None = field(repr=False)
    """The chosen key's value for this attempt, or None for providers without keys. Never log it."""
    config: ProviderConfig = field(repr=False)


@dataclass(slots=True)
class UpstreamRequest:
    """One HTTP request to send upstream. ``headers`` include auth; never log them.

    ``headers`` may be a dict the translator shares between requests (built once per key): whoever
    wants to change it for one request copies it first (the attempt hooks get a copy).
    """

    url: str
    body: bytes
    headers: dict[str, str] = field(repr=False)
    method: str = "POST"


@dataclass(slots=True)
class MappedError:
    """An upstream error, in the core's (OpenAI's) terms. ``status`` is what the client sees."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    """Seconds the upstream asked to wait, when its body says so (headers are read by routing)."""


class StreamDecoder(Protocol):
    """Turns one upstream stream's bytes into ``StreamItem``s, incrementally.

    ``feed`` gets the bytes as they arrive, split anywhere (mid-line, mid-UTF-8 sequence), and returns
    the items they complete: core ``Chunk`` dicts, or ``bytes`` holding complete SSE events in the
    decoder's ``format`` (a pass-through decoder forwards the upstream's events, its end marker
    included). ``done`` becomes True once the upstream signalled a normal end; an upstream that closes
    before that is a broken stream. An error the upstream reports *inside* the stream is not an item:
    the decoder sets ``error`` (and ``failed``) and stops; the relay renders it in the client's
    dialect. ``usage`` holds the token counts seen so far (None when the upstream reported none).
    """

    format: str
    done: bool
    failed: bool
    error: GatewayError | None
    usage: Usage | None

    def feed(self, data: bytes) -> list[StreamItem]: ...

    def finish(self) -> list[StreamItem]:
        """Called at upstream EOF: flush what is buffered (may be empty)."""
        ...


class Translator(Protocol):
    """Chat completions between the core schema and one provider's wire format. Pure: no I/O."""

    def chat_request(self, request: dict[str, Any], target: Target, *, stream: bool) -> UpstreamRequest:
        """Build the upstream request from a core ``ChatBody``.

        ``request`` is the core body; its ``model`` is the client's name, use ``target.model``
        instead. Must not mutate ``request`` (a fallback reuses it). Raise ``InvalidRequestError``
        (``UnsupportedError``) for input the provider cannot take, naming the field in ``param``.
        """
        ...

    def chat_response(self, body: bytes, target: Target) -> Reply:
        """Turn a 2xx upstream body into a core ``Reply`` (raise ``UpstreamProtocolError``)."""
        ...

    def stream_decoder(self, request: dict[str, Any], target: Target) -> StreamDecoder:
        """A fresh decoder for one streamed answer to ``request`` (the body given to chat_request)."""
        ...

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MappedError:
        """Map a non-2xx upstream answer to core error terms, keeping the upstream's status."""
        ...


@runtime_checkable
class EmbeddingsTranslator(Protocol):
    """Optional capability: embeddings (core ``EmbeddingsBody`` in, OpenAI embeddings list out)."""

    def embeddings_request(self, request: dict[str, Any], target: Target) -> UpstreamRequest: ...

    def embeddings_response(self, body: bytes, target: Target) -> Reply: ...


@runtime_checkable
class NativeTranslator(Protocol):
    """Optional capability: pass-through of a client dialect's own body (``formats``).

    The body is forwarded with only the model rewritten (and, if plugins added tools, those tools in
    the format's own shape); the answer comes back in the same format, read only for usage and
    validity. Errors still go through ``Translator.error``.
    """

    native_formats: frozenset[str]

    def native_request(
        self,
        format: str,
        body: dict[str, Any],
        target: Target,
        *,
        stream: bool,
        extra_tools: list[Any],
        client_headers: Mapping[str, str] = NO_HEADERS,
    ) -> UpstreamRequest:
        """``client_headers``: the caller's headers (credentials masked), for the few a format defines
        as part of the request (Anthropic's ``anthropic-beta``): the provider's own credentials and
        settings are never taken from the client."""
        ...

    def native_response(self, format: str, body: bytes, target: Target) -> Reply: ...

    def native_stream_decoder(self, format: str, body: dict[str, Any], target: Target) -> StreamDecoder: ...
