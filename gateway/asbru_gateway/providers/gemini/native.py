"""Gemini pass-through: a Gemini client's own body to a Gemini provider, untouched.

The model lives in the URL (``/models/{model}:generateContent``), never in the body, so only the
path is rewritten to the target's model; a ``model`` field in the body is dropped, except where
Google's API requires one inside a nested request (``batchEmbedContents``' ``requests[]``, a
``countTokens`` ``generateContentRequest``): there it is set to the target's model. Tools added by
plugins join the body's ``functionDeclarations``.

Answers come back as Google wrote them: read for validity and ``usageMetadata`` only. A stream's
events are forwarded one by one, each checked to be a JSON object first; an error event is not
forwarded (it may quote a key) but becomes the decoder's ``error``. Gemini has no end marker: the
stream ended normally when the upstream closes after every candidate reported a ``finishReason``
(or the prompt was blocked).
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.core.formats import GEMINI_COUNT_TOKENS, GEMINI_EMBED, GEMINI_GENERATE
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError, UpstreamError, trigger_for_status
from asbru_gateway.providers.gemini.errors import error_from_object, in_stream_status
from asbru_gateway.providers.gemini.options import tools as declarations_of
from asbru_gateway.providers.gemini.response import is_blocked, is_finished, load_object, usage_of
from asbru_gateway.providers.sse import SSEBuffer, parse_event

JSON = dict[str, Any]

NATIVE_FORMATS = frozenset({GEMINI_GENERATE, GEMINI_EMBED, GEMINI_COUNT_TOKENS})


def native_call(
    format: str, body: JSON, model: str, *, stream: bool, extra_tools: list[Any]
) -> tuple[str, bytes]:
    """The method (the URL's ``:method`` part) and the body to send for a pass-through request."""
    if format == GEMINI_GENERATE:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        if "model" in body or extra_tools:
            body = {name: value for name, value in body.items() if name != "model"}
            if extra_tools:
                body["tools"] = with_tools(body.get("tools"), extra_tools)
        return method, orjson.dumps(body)
    if format == GEMINI_EMBED:
        if "requests" in body:
            requests = [_with_model(item, model) for item in body.get("requests") or ()]
            return "batchEmbedContents", orjson.dumps({**body, "requests": requests})
        return "embedContent", orjson.dumps(_without_model(body))
    inner = body.get("generateContentRequest", body.get("generate_content_request"))
    if isinstance(inner, dict):
        body = {name: value for name, value in body.items() if name != "generate_content_request"}
        body["generateContentRequest"] = _with_model(inner, model)
    return "countTokens", orjson.dumps(_without_model(body))


def with_tools(tools: Any, extra: list[Any]) -> list[Any]:
    """The body's ``tools`` plus plugin tools, added to its first ``functionDeclarations`` list."""
    added = declarations_of(extra) or []
    declared = added[0]["functionDeclarations"] if added else []
    out = list(tools) if isinstance(tools, list) else []
    for index, tool in enumerate(out):
        if not isinstance(tool, dict):
            continue
        for key in ("functionDeclarations", "function_declarations"):
            if isinstance(tool.get(key), list):
                out[index] = {**tool, key: [*tool[key], *declared]}
                return out
    return [*out, {"functionDeclarations": declared}] if declared else out


def _with_model(item: Any, model: str) -> Any:
    return {**item, "model": f"models/{model}"} if isinstance(item, dict) else item


def _without_model(body: JSON) -> JSON:
    return {name: value for name, value in body.items() if name != "model"} if "model" in body else body


def native_reply(format: str, body: bytes) -> Reply:
    """A pass-through answer, checked to be a JSON object; usage from ``usageMetadata``."""
    data = load_object(body)
    usage = usage_of(data.get("usageMetadata")) if format == GEMINI_GENERATE else None
    return Reply(body, data=data, format=format, usage=usage)


class GeminiPassthroughDecoder:
    """Gemini SSE events in, the same events out (validated); see ``StreamDecoder``."""

    __slots__ = ("_blocked", "_finished", "_sse", "_started", "done", "error", "failed", "usage")
    format = GEMINI_GENERATE

    def __init__(self) -> None:
        self._sse = SSEBuffer()
        self.done = False
        self.failed = False
        self.error: GatewayError | None = None
        self.usage: Usage | None = None
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._blocked = False

    def feed(self, data: bytes) -> list[StreamItem]:
        if self.done or self.failed:
            return []
        return self._events(self._sse.raw_events(data))

    def finish(self) -> list[StreamItem]:
        if self.done or self.failed:
            return []
        rest = self._sse.rest()
        out = self._events([rest]) if rest else []
        self.done = not self.failed and (
            self._blocked or (bool(self._finished) and self._started <= self._finished)
        )
        return out

    def _events(self, events: list[bytes]) -> list[StreamItem]:
        out: list[bytes] = []
        last = len(events) - 1
        for position, raw in enumerate(events):
            if position < last and self._plain(raw):
                out.append(raw)  # well framed, nothing to read in it: forwarded unparsed
                continue
            event = self._event(raw)
            if self.failed:
                return []  # nothing after an error reaches the client
            if event is not None:
                out.append(event)
        return [b"\n\n".join(out) + b"\n\n"] if out else []

    def _plain(self, raw: bytes) -> bool:
        """An event before the last of a read that only adds text to candidate 0, already started.

        Checked by framing and substrings only (~1 k instructions instead of ~12 k for a parse):
        one ``data: {...}`` line, no finish, block or error in it, no candidate but index 0. The
        last event of every read is parsed whole, so the usage (cumulative in each event) is the
        latest one, and every finish, block and error is read.
        """
        return (
            0 in self._started
            and raw.startswith(b"data: {")
            and raw.endswith(b"}")
            and raw.find(b"\n") < 0  # find, not in: see providers.sse
            and raw.find(b'"finishReason"') < 0
            and raw.find(b'"error"') < 0
            and raw.find(b'"blockReason"') < 0
            and raw.find(b'"promptFeedback"') < 0
            and raw.count(b'"index":') == raw.count(b'"index":0')
        )

    def _event(self, raw: bytes) -> bytes | None:
        if raw.startswith(b"data: {") and raw.find(b"\n") < 0:
            payload = raw[6:].strip()  # one data line, as Google sends them: no general parser
        else:
            payload = parse_event(raw).data.strip()
        if not payload and raw.lstrip().startswith(b"{"):
            payload = raw  # an error Google wrote as bare JSON, outside SSE framing
        if not payload:
            return None  # comments, keep-alives
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            self._fail("Gemini sent a stream event that is not a JSON object", "bad_upstream_response")
            return None
        error = data.get("error")
        if isinstance(error, dict):
            status = in_stream_status(error)  # Google's own code: a 429 before any event may fall back
            mapped = error_from_object(error, status)
            self._fail(mapped.message, mapped.code, mapped.type, status)
            return None
        self._read(data)
        return b"data: " + payload

    def _read(self, data: JSON) -> None:
        if isinstance(data.get("usageMetadata"), dict):
            self.usage = usage_of(data["usageMetadata"])
        if is_blocked(data):
            self._blocked = True
        candidates = data.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            if not isinstance(candidate, dict):
                continue
            index = candidate.get("index", 0)
            index = index if isinstance(index, int) else 0
            self._started.add(index)
            if is_finished(candidate.get("finishReason")):
                self._finished.add(index)

    def _fail(self, message: str, code: str | None, kind: str = "api_error", status: int = 502) -> None:
        self.failed = True
        self.error = UpstreamError(
            message, status=status, type=kind, code=code, trigger=trigger_for_status(status)
        )
