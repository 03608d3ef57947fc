"""The provider contract: a pure translator between the OpenAI wire format and one provider's.

A provider is three things, and only the first is per provider:

1. a ``Translator`` (this module's protocol): builds the upstream HTTP request from an OpenAI-format
   request body, turns the upstream's answer (JSON, stream bytes, error) back into OpenAI format.
   It does no I/O, holds no connection and never sleeps, so it is tested with bytes in, bytes out;
2. a ``ProviderType`` entry in ``registry.py`` (default base URL, env variables, translator factory);
3. the one shared HTTP execution path (``transport.py``), the same for every provider.

The gateway speaks OpenAI on both sides of the translator: request bodies arrive as decoded OpenAI
``chat.completions`` dicts; responses leave as OpenAI JSON bytes and OpenAI SSE events
(``data: {...}\\n\\n``, ending with ``data: [DONE]\\n\\n``). Embeddings are an optional capability
(``EmbeddingsTranslator``), checked only when an embeddings request reaches the provider: a
translator without it answers 400 ``unsupported_for_provider``, chat never pays for the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from asbru_gateway.config.model import ProviderConfig


@dataclass(slots=True)
class Usage:
    """Token counts of one call, as the OpenAI ``usage`` object names them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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
    """One HTTP request to send upstream. ``headers`` include auth; never log them."""

    url: str
    body: bytes
    headers: dict[str, str] = field(repr=False)
    method: str = "POST"


@dataclass(slots=True)
class ChatResult:
    """A complete (non-streaming) answer in OpenAI ``chat.completion`` format."""

    body: bytes
    usage: Usage | None = None


@dataclass(slots=True)
class MappedError:
    """An upstream error, in OpenAI terms. ``status`` is what the client sees (usually upstream's)."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    """Seconds the upstream asked to wait, when its body says so (headers are read by routing)."""


class StreamDecoder(Protocol):
    """Turns one upstream stream's bytes into OpenAI SSE events, incrementally.

    ``feed`` gets the bytes as they arrive, split anywhere (mid-line, mid-UTF-8 sequence) and
    returns the complete OpenAI events they finish, each ``b"data: ...\\n\\n"``; a pass-through
    decoder may return several consecutive events joined in one item (the relay splits them for
    plugins that want single events). ``done`` becomes
    True once the upstream signalled a normal end and ``data: [DONE]\\n\\n`` was emitted; an upstream
    that closes before that is a broken stream and the gateway ends it with an error event.
    ``usage`` holds the token counts seen so far (None when the upstream reported none).
    An upstream error *inside* the stream is emitted as an OpenAI error event
    (``data: {"error": {...}}\\n\\n``) and also ends the stream (``done`` stays False, ``failed`` True).
    """

    done: bool
    failed: bool
    usage: Usage | None

    def feed(self, data: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]:
        """Called at upstream EOF: flush what is buffered (may be empty)."""
        ...


class Translator(Protocol):
    """Chat completions between OpenAI format and one provider's wire format. Pure: no I/O."""

    def chat_request(self, request: dict[str, Any], target: Target, *, stream: bool) -> UpstreamRequest:
        """Build the upstream request from an OpenAI ``chat.completions`` body.

        ``request`` is the client's decoded body minus gateway-only fields (``fallbacks``); its
        ``model`` is the client's name, use ``target.model`` instead. Must not mutate ``request``
        (a fallback reuses it). Raise ``InvalidRequestError`` for input the provider cannot take.
        """
        ...

    def chat_response(self, body: bytes, target: Target) -> ChatResult:
        """Turn a 2xx upstream body into an OpenAI ``chat.completion`` (raise UpstreamProtocolError)."""
        ...

    def stream_decoder(self, request: dict[str, Any], target: Target) -> StreamDecoder:
        """A fresh decoder for one streamed answer to ``request`` (the same dict given to chat_request)."""
        ...

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MappedError:
        """Map a non-2xx upstream answer to OpenAI error terms, keeping the upstream's status."""
        ...


@runtime_checkable
class EmbeddingsTranslator(Protocol):
    """Optional capability: ``POST /v1/embeddings``."""

    def embeddings_request(self, request: dict[str, Any], target: Target) -> UpstreamRequest: ...

    def embeddings_response(self, body: bytes, target: Target) -> ChatResult: ...
