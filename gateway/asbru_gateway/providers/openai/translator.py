"""OpenAI ``/chat/completions`` and ``/embeddings``: the translator that mostly copies bytes.

The core schema *is* OpenAI's chat schema, so this translator copies bytes wherever it can: the
request is re-serialised only to set the upstream model name; responses and stream events are
forwarded unchanged and parsed only to read ``usage``. Every OpenAI-compatible provider (Groq,
Mistral, DeepSeek, vLLM, Ollama, ...) is this translator with another base URL. OpenAI's own API
also takes the Responses and legacy Completions formats as they are (``native.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from asbru_gateway.core.formats import CORE
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import (
    GatewayError,
    UpstreamError,
    UpstreamProtocolError,
    openai_error_type_for_status,
)
from asbru_gateway.providers.base import MappedError, Target, UpstreamRequest
from asbru_gateway.providers.sse import DONE_EVENT, SSEBuffer


class OpenAITranslator:
    """Chat and embeddings for OpenAI's own API and every server that speaks it."""

    def __init__(self, *, stream_usage: bool = True) -> None:
        self._stream_usage = stream_usage
        self._headers: dict[str | None, dict[str, str]] = {}

    def auth_header(self, api_key: str) -> tuple[str, str]:
        return "authorization", "Bearer " + api_key

    def headers(self, target: Target) -> dict[str, str]:
        """Request headers, built once per key (a translator lives as long as its provider config)."""
        headers = self._headers.get(target.api_key)
        if headers is None:
            headers = {"content-type": "application/json", **target.config.network.headers}
            if target.api_key:
                name, value = self.auth_header(target.api_key)
                headers[name] = value
            self._headers[target.api_key] = headers
        return headers

    def url(self, target: Target, operation: str) -> str:
        return f"{target.base_url}/{operation}"

    def chat_request(self, request: dict[str, Any], target: Target, *, stream: bool) -> UpstreamRequest:
        body = dict(request)
        body["model"] = target.model
        if stream and self._injects_usage(request):
            # Ask for usage so token metrics work for streams; the extra usage-only chunk is
            # removed again before the client sees it (it did not ask for it).
            body["stream_options"] = {"include_usage": True}
        return UpstreamRequest(
            url=self.url(target, "chat/completions"), body=orjson.dumps(body), headers=self.headers(target)
        )

    def _injects_usage(self, request: dict[str, Any]) -> bool:
        return self._stream_usage and "stream_options" not in request

    def chat_response(self, body: bytes, target: Target) -> Reply:
        return Reply(body, usage=usage_of(body))

    def stream_decoder(self, request: dict[str, Any], target: Target) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(hide_usage_chunk=self._injects_usage(request))

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MappedError:
        return openai_style_error(status, body)

    def embeddings_request(self, request: dict[str, Any], target: Target) -> UpstreamRequest:
        body = dict(request)
        body["model"] = target.model
        return UpstreamRequest(
            url=self.url(target, "embeddings"), body=orjson.dumps(body), headers=self.headers(target)
        )

    def embeddings_response(self, body: bytes, target: Target) -> Reply:
        return Reply(body, usage=usage_of(body))


class OpenAIStreamDecoder:
    """Forwards OpenAI SSE events unchanged (core format); reads usage from the chunk that carries it."""

    __slots__ = ("_first_checked", "_sse", "done", "error", "failed", "hide_usage_chunk", "usage")
    format = CORE

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        self._sse = SSEBuffer()
        self.done = False
        self.failed = False
        self.error: GatewayError | None = None
        self.usage: Usage | None = None
        self.hide_usage_chunk = hide_usage_chunk
        self._first_checked = False

    def feed(self, data: bytes) -> list[StreamItem]:
        ends = data.endswith(DONE_EVENT)  # a whole short answer in one read: deltas, then the end marker
        if self._passes_through(data[: -len(DONE_EVENT)] if ends else data):
            self.done = ends
            return [data]
        # Anything else, a block with a malformed event included, goes event by event: the good
        # events before a bad one still reach the client, nothing after it does.
        out: list[StreamItem] = []
        for event in self._sse.raw_events(data):
            if self._ended():
                break
            if self._first_checked and _plain(event):
                out.append(event + b"\n\n")  # a content delta: checked by its framing, as above
                continue
            kept = self._event(event)
            if kept is not None:
                out.append(kept)
        return out

    def _ended(self) -> bool:
        return self.failed

    def _passes_through(self, data: bytes) -> bool:
        """Whole, well-framed events with nothing to read or change in them: forward the block.

        The common case (content deltas): substring scans and counts instead of a split, a check
        and a join per event. Well-framed means every event is exactly one ``data: {...}`` line
        ending in ``}``: a block of anything else (HTML, plain text, a truncated or unterminated
        event, comments, a usage chunk) takes the event-by-event path, where every event is parsed
        but plain deltas (``_plain``). The first event of a stream is always parsed in full (it
        decides whether the attempt falls back); parsing every pass-through event in full would
        cost ~12 k instructions per event (measured), framing checks cost ~1 k for a whole block.
        """
        if (
            self._sse.pending
            or self.failed
            or not data.endswith(b"}\n\n")
            or not data.startswith(b"data: {")
            or data.find(b"\r") >= 0  # find, not in: see providers.sse
            or data.find(b'"usage"') >= 0
            or data.find(b'"error"') >= 0
        ):
            return False
        # One ``data: {...}`` line per event: every event ends in ``}`` and every one after the
        # first starts with ``data: {`` (so no comment, ``[DONE]`` or other line hides in between).
        events = data.count(b"\n\n")
        return (
            data.count(b"}\n\n") == events
            and data.count(b"\n\ndata: {") == events - 1
            and (self._first_checked or self._check_first(data))
        )

    def _check_first(self, data: bytes) -> bool:
        self._first_checked = True
        return _is_json(data[6 : data.index(b"\n\n")])

    def _malformed(self) -> list[StreamItem]:
        """An event that is not JSON: nothing of it reaches the client; the stream has failed."""
        self.failed = True
        self.error = UpstreamProtocolError("upstream sent a stream event that is not JSON")
        return []

    def finish(self) -> list[StreamItem]:
        rest = self._sse.rest()
        if not rest or self._ended():
            return []
        kept = self._event(rest)
        return [kept] if kept is not None else []

    def _event(self, event: bytes) -> bytes | None:
        if event.startswith((b"data: [DONE]", b"data:[DONE]")):
            self.done = True
            return DONE_EVENT
        if event.startswith(b":"):  # SSE comment / keep-alive: nothing for the client
            return None
        if event.find(b'"usage":{') >= 0 or event.find(b'"usage": {') >= 0:
            payload = _data_of(event)
            self.usage = usage_of(payload)
            if self.hide_usage_chunk and b'"choices":[]' in payload.replace(b" ", b""):
                return None
        elif event.startswith((b'data: {"error"', b'data:{"error"')):
            self.failed = True
            self.error = stream_error(_data_of(event))
            return None
        elif not _is_json(_data_of(event)):
            self._malformed()
            return None
        self._first_checked = True
        return event + b"\n\n"


def _plain(event: bytes) -> bool:
    """One ``data: {...}`` line with no usage or error in it: nothing to read, forwarded unparsed."""
    return (
        event.startswith(b"data: {")
        and event.endswith(b"}")
        and event.find(b"\n") < 0  # find, not in: see providers.sse
        and event.find(b'"usage"') < 0
        and event.find(b'"error"') < 0
    )


def _is_json(payload: bytes) -> bool:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


def _data_of(event: bytes) -> bytes:
    start = event.find(b"data:")
    return event[start + 5 :].strip() if start >= 0 else b""


def stream_error(payload: bytes) -> UpstreamError:
    """An OpenAI-format error event's payload as the gateway's error (the relay renders it)."""
    mapped = openai_style_error(502, payload)
    return UpstreamError(
        mapped.message, status=502, type=mapped.type, code=mapped.code, trigger="server_error"
    )


LARGE_BODY = 64 * 1024
"""Above this, a body is not parsed whole: its usage is read from its tail (see ``usage_of``)."""


def usage_of(body: bytes) -> Usage | None:
    """The ``usage`` of an OpenAI response body, or None. Raises on a body that is not JSON.

    A body nobody else needs to read passes through as bytes, so parsing it whole only to read
    ``usage`` would be the biggest cost of a large answer (a 1 MB body: milliseconds of CPU that
    every other request on the loop waits for). Past ``LARGE_BODY`` the body is checked to be one
    JSON object (its first and last bytes) and ``usage`` is parsed alone, from the last
    ``"usage":`` key: OpenAI writes it after the choices, and no number in it contains a brace.
    """
    if len(body) > LARGE_BODY:
        return _tail_usage(body)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream answered with a body that is not JSON") from None
    usage = data.get("usage") if isinstance(data, dict) else None
    return _usage(usage)


def _usage(usage: object) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def _tail_usage(body: bytes) -> Usage | None:
    stripped = body.strip()
    if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
        raise UpstreamProtocolError("upstream answered with a body that is not a JSON object")
    key = stripped.rfind(b'"usage"')
    start = stripped.find(b"{", key) if key >= 0 else -1
    if start < 0 or stripped[key + 7 : start].strip() != b":":
        return None
    depth, end = 0, start
    for end in range(start, min(len(stripped), start + 4096)):  # bounded: usage objects are small
        char = stripped[end]
        depth += (char == 0x7B) - (char == 0x7D)
        if depth == 0:
            break
    try:
        return _usage(orjson.loads(stripped[start : end + 1]))
    except orjson.JSONDecodeError:
        return None


def openai_style_error(status: int, body: bytes) -> MappedError:
    """Read an OpenAI-format error body; fall back to the status and a bounded excerpt of the text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return MappedError(
            status=status,
            message=str(error.get("message") or f"upstream returned HTTP {status}"),
            type=str(error.get("type") or openai_error_type_for_status(status)),
            code=None if error.get("code") is None else str(error.get("code")),
            param=None if error.get("param") is None else str(error.get("param")),
        )
    if isinstance(error, str):
        message = error
    else:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"upstream returned HTTP {status}" + (f": {text}" if text else "")
    return MappedError(status=status, message=message, type=openai_error_type_for_status(status))
