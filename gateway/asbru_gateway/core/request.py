"""``LLMRequest``: one client request as every layer after the ingress dialect sees it.

A dialect builds it from the client's body: either translating into the core schema (``core``), or,
when its body can pass through to a provider of the same family, keeping the body as it came
(``native``) and translating to the core only if someone asks (a fallback to another family, a plugin
that reads ``core``). The OpenAI chat dialect *is* the core schema, so there ``native`` is None and
``core`` is the client's dict.

Routing and the stream relay fill in what happened (provider, model, key, usage, timings); plugins
read it and may set ``identity``. One instance per client request, slots only: it is created on the
hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.headers import RequestHeaders
from asbru_gateway.core.identity import ClientCredential, Identity, read_credential
from asbru_gateway.core.schema import Tool
from asbru_gateway.core.usage import Usage

CHAT = "chat"
EMBEDDINGS = "embeddings"
COUNT_TOKENS = "count_tokens"
OPERATIONS = (CHAT, EMBEDDINGS, COUNT_TOKENS)

ToCore = Callable[[dict[str, Any]], dict[str, Any]]


class LLMRequest:
    core: dict[str, Any]

    __slots__ = (
        "_credential",
        "_headers",
        "_query",
        "_raw_headers",
        "_to_core",
        "attempts",
        "client_body",
        "core",
        "cost",
        "deadline",
        "dialect",
        "events_sent",
        "extra_tools",
        "fallbacks",
        "fallbacks_used",
        "family",
        "first_token_at",
        "identity",
        "key_name",
        "last_event_at",
        "metric_model",
        "model",
        "native",
        "native_format",
        "operation",
        "passthrough",
        "provider",
        "request_id",
        "requested_model",
        "response_headers",
        "response_started",
        "retries",
        "started_at",
        "state",
        "stream",
        "upstream_latency_s",
        "upstream_model",
        "usage",
    )

    def __init__(
        self,
        request_id: str,
        operation: str,
        dialect: str,
        model: str,
        *,
        stream: bool = False,
        core: dict[str, Any] | None = None,
        native: dict[str, Any] | None = None,
        native_format: str = CORE,
        to_core: ToCore | None = None,
        fallbacks: list[Any] | None = None,
        family: str | None = None,
        raw_headers: Iterable[tuple[bytes, bytes]] = (),
        query: bytes = b"",
    ) -> None:
        if core is None and (native is None or to_core is None):  # checked once, here
            raise ValueError("an LLMRequest needs a core body, or a native body and its translation")
        self.request_id = request_id
        self.operation = operation
        """``chat``, ``embeddings`` or ``count_tokens`` (``OPERATIONS``)."""
        self.dialect = dialect
        """The client's dialect id (``openai.chat``, ``anthropic.messages``, ...): errors speak it."""
        self.model = model
        """The model name the client asked for (a route, ``provider/model``, or a bare name)."""
        self.requested_model = model
        self.stream = stream
        if core is not None:
            self.core = core
            """The request in the core schema (``schema.ChatBody`` / ``EmbeddingsBody``), translated
            from ``native`` on first read (``__getattr__``). Read it freely; to change it, use
            ``edit()``, which also stops pass-through (an edit of the core body would otherwise be
            lost on the way to a provider that takes ``native``)."""
        self.native = native
        """The client's own body when it can pass through to a provider of ``native_format``."""
        self.client_body = native
        """The client's own body as its dialect kept it (None where the body is ``core`` itself).
        Unlike ``native`` it stays after ``edit()``: the dialect renders the answer from it (the
        Responses API echoes ``instructions``, ``tools`` and ``metadata`` back)."""
        self.native_format = native_format
        self._to_core = to_core
        self.fallbacks = fallbacks
        """The request's own fallback model names (Bifrost's ``fallbacks`` field), validated by routing."""
        self.family = family
        """Under a drop-in prefix (``/openai``, ``/anthropic``, ``/genai``): the provider family a bare
        model name resolves to when no route has that name."""
        self._raw_headers = raw_headers
        self._headers: RequestHeaders | None = None
        self._query = query
        self._credential: ClientCredential | bool | None = False  # False: not read yet
        self.identity: Identity | None = None
        """Who is calling, once an authenticating plugin resolved the credential."""
        self.extra_tools: list[Tool] | None = None
        """Tools added by plugins (MCP): every path that builds an upstream body includes them."""
        self.provider: str | None = None
        """The provider that served (or last failed) the request."""
        self.metric_model = ""
        """The upstream model as a metric label: configured names only, others read "other"."""
        self.upstream_model: str | None = None
        """The upstream model of the last attempt (route aliases and ``provider/`` resolved)."""
        self.passthrough = False
        """True when the last attempt forwarded ``native`` as it is: the answer (a reply, or a stream's
        bytes) is then in ``native_format``, not in the core format."""
        self.key_name: str | None = None
        """The name (never the value) of the provider key used by the last attempt."""
        self.usage: Usage | None = None
        self.cost: float | None = None
        """USD, when a pricing plugin computed it."""
        self.upstream_latency_s: float | None = None
        self.started_at = time.perf_counter()
        self.deadline = self.started_at + 300.0
        """``perf_counter`` time by which upstream work must be done (the engine sets it from config)."""
        self.response_started = False
        """True once response headers went to the client: nothing else can be sent instead."""
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        """Headers plugins add to whatever response goes out (an answer, an error, a stream): set
        before the response starts (pre_request, before_attempt); streams get them too."""
        self.first_token_at: float | None = None
        self.last_event_at: float | None = None
        self.events_sent = 0
        self.attempts = self.retries = self.fallbacks_used = 0
        self.state: dict[str, Any] | None = None
        """Scratch space for plugins (created on first use; key it by plugin name)."""

    def __getattr__(self, name: str) -> Any:
        """Only reached for a slot not yet set: ``core`` of a native request, translated once."""
        if name != "core":
            raise AttributeError(name)
        if self.native is None or self._to_core is None:
            raise RuntimeError("request has neither a core body nor a native one to translate")
        core = self._to_core(self.native)
        self.core = core
        return core

    def edit(self) -> dict[str, Any]:
        """The core body, to be changed in place; from now on the request is translated, not passed."""
        body = self.core
        self.native = None
        self.native_format = CORE
        return body

    def add_tools(self, tools: list[Tool]) -> None:
        """Offer more tools to the model (MCP), in whichever format the upstream request is built."""
        if tools:
            self.extra_tools = [*(self.extra_tools or ()), *tools]

    @property
    def credential(self) -> ClientCredential | None:
        """The credential the client presented, wherever its SDK put it (masked when printed).

        Read on first access (most requests never need it) from, in order: ``x-bf-vk`` (Bifrost's
        virtual key header), ``Authorization: Bearer``, ``x-api-key`` (Anthropic), ``x-goog-api-key``
        and ``?key=`` (Gemini).
        """
        if self._credential is False:
            self._credential = read_credential(self._raw_headers, self._query)
        return self._credential  # type: ignore[return-value]

    @property
    def headers(self) -> RequestHeaders:
        """The caller's headers, read-only, credential headers masked (built on first read)."""
        if self._headers is None:
            self._headers = RequestHeaders(self._raw_headers)
        return self._headers
