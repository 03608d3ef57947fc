"""uvicorn's httptools protocol with the limits a gateway on a network needs (issue 9, defect 6).

What plain uvicorn lacks, and this adds:

- a header size limit, checked as bytes arrive: over ``max_header_bytes`` the client gets 431 and
  the connection closes at once (httptools would otherwise accumulate an 80 MB header, quadratically);
- a deadline for the request line and headers, and one for the body: a slowloris client that
  trickles bytes is answered 408 and dropped, however steadily it trickles;
- idle keep-alive connections are closed even after an early answer: uvicorn cancels its
  keep-alive timer when the rest of an unread body arrives and never re-arms it, so a client that
  got a 404 or 413 before its body was read kept the connection open forever;
- malformed HTTP gets a 400 in the OpenAI error shape, not uvicorn's plain text.

Deadlines cost one attribute write per phase change; one ``ConnectionGuard`` per loop checks them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from asbru_gateway.server.guard import guard_for
from asbru_gateway.server.limits import ServerLimits

_HEADERS, _BODY, _HANDLING = 0, 1, 2
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class AsbruHttpProtocol(HttpToolsProtocol):
    """One client connection. ``limits`` come from the uvicorn config (``asbru_limits``)."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ServerLimits = getattr(config, "asbru_limits", None) or ServerLimits()
        self._guard = guard_for(self.loop)
        self._phase = _HEADERS
        self._since = 0
        self._header_bytes = 0
        self._waiting = False
        """True between a request's first byte and its last header (the header deadline runs)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter(_HEADERS)
        self._waiting = True  # a connection that sends nothing is held to the header deadline too
        self._guard.add(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.discard(self)
        super().connection_lost(exc)

    def _enter(self, phase: int) -> None:
        self._phase = phase
        self._since = self._guard.tick

    def data_received(self, data: bytes) -> None:
        if self._phase == _HEADERS:
            if not self._waiting:
                self._waiting = True
                self._since = self._guard.tick
            end = data.find(b"\r\n\r\n")
            size = self._header_bytes + (len(data) if end < 0 else end)
            if size > self.limits.max_header_bytes:
                self._refuse(431, "request headers are larger than the limit", "request_header_too_large")
                return
            self._header_bytes = size if end < 0 else 0
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._since = self._guard.tick
        self._waiting = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:
            # The answer went out before the body was read (404, 413): the body is now drained,
            # so the connection is idle again and must not stay open forever.
            self._enter(_HEADERS)
            if self.timeout_keep_alive_task is None and not self.pipeline and not self.transport.is_closing():
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
        else:
            self._enter(_HANDLING)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._phase == _HANDLING:
            self._phase = _HEADERS
            self._header_bytes = 0

    def check_deadline(self, tick: int) -> None:
        """Ticks are ~1 s apart: a phase is over its limit once a full limit's worth of ticks passed."""
        if self.transport.is_closing():
            return
        waited = (tick - self._since - 1) * self._guard.INTERVAL_S
        if self._phase == _HEADERS and self._waiting and waited >= self.limits.header_timeout_s:
            self._refuse(408, "the request's headers did not arrive in time", "request_timeout")
        elif self._phase == _BODY and waited >= self.limits.body_timeout_s:
            if self.cycle is not None and self.cycle.response_started:
                self.transport.close()
            else:
                self._refuse(408, "the request's body did not arrive in time", "request_timeout")

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "malformed HTTP request", "invalid_http")

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer with an OpenAI error body and close: the connection's state cannot be trusted."""
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        body = orjson.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}
        )
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        if self.cycle is not None:
            self.cycle.keep_alive = False
