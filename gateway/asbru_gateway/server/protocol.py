"""uvicorn's httptools protocol with the limits a gateway on a network needs (issue 9, defect 6).

What plain uvicorn lacks, and this adds:

- a header size limit, checked as bytes arrive: over ``max_header_bytes`` the client gets 431 and
  the connection closes at once (httptools would otherwise accumulate an 80 MB header, quadratically);
- a deadline for the request line and headers, and one for the body: a slowloris client that
  trickles bytes is answered 408 and dropped, however steadily it trickles;
- idle keep-alive connections are closed even after an early answer: uvicorn cancels its
  keep-alive timer when the rest of an unread body arrives and never re-arms it, so a client that
  got a 404 or 413 before its body was read kept the connection open forever;
- malformed HTTP gets a 400 in the OpenAI error shape, not uvicorn's plain text;
- a client that leaves mid-request has its handler cancelled at once (``api.disconnect``).

Deadlines cost one attribute write per phase change; one ``ConnectionGuard`` per loop checks them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from asbru_gateway.api.disconnect import client_left
from asbru_gateway.server.guard import guard_for
from asbru_gateway.server.limits import ServerLimits

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class AsbruHttpProtocol(HttpToolsProtocol):
    """One client connection. ``limits`` come from the uvicorn config (``asbru_limits``).

    Only two parser steps are overridden (bytes arriving, headers complete): what happens between
    them is read from uvicorn's own request cycle by the guard, once a second, off the hot path.
    """

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ServerLimits = getattr(config, "asbru_limits", None) or ServerLimits()
        self._guard = guard_for(self.loop)
        self._since = 0
        """Guard tick at which the current wait began (headers: first byte; body: last header)."""
        self._header_bytes = 0
        self._waiting = True
        """Between a request's first byte (or a new connection) and its last header."""
        self._idle_since = -1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = self._guard.tick  # a connection that sends nothing is held to the deadline too
        self._guard.add(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.discard(self)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            client_left(cycle.scope)  # type: ignore[arg-type]  # a dict; cancels the handler: its slot and upstream call are freed now
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if cycle is None or (cycle.response_complete and not cycle.more_body):  # before a request
            if not self._waiting:
                self._waiting = True
                self._since = self._guard.tick
                self._header_bytes = 0
            end = data.find(b"\r\n\r\n")
            size = self._header_bytes + (len(data) if end < 0 else end)
            if size > self.limits.max_header_bytes:
                self._refuse(431, "request headers are larger than the limit", "request_header_too_large")
                return
            self._header_bytes = size
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._waiting = False
        self._since = self._guard.tick
        super().on_headers_complete()

    def check_deadline(self, tick: int) -> None:
        """Called about once a second. A phase is over its limit once a full limit's worth of ticks
        passed since it began (so it fires between the limit and the limit plus two seconds)."""
        if self.transport.is_closing():
            return
        waited = (tick - self._since - 1) * self._guard.INTERVAL_S
        cycle = self.cycle
        if self._waiting:
            if waited >= self.limits.header_timeout_s:
                self._refuse(408, "the request's headers did not arrive in time", "request_timeout")
        elif cycle is not None and cycle.more_body:
            if waited >= self.limits.body_timeout_s:
                if cycle.response_started:
                    self.transport.close()
                else:
                    self._refuse(408, "the request's body did not arrive in time", "request_timeout")
        elif cycle is not None and cycle.response_complete and self.timeout_keep_alive_task is None:
            self._close_if_idle(tick)

    def _close_if_idle(self, tick: int) -> None:
        """An answer that went out before the body was read (404, 413): uvicorn cancels its
        keep-alive timer when the rest of that body arrives and never re-arms it, so the idle
        connection would stay open forever. Close it after the keep-alive time instead."""
        if self._idle_since < 0 or self._idle_since < self._since:
            self._idle_since = tick
        elif (tick - self._idle_since) * self._guard.INTERVAL_S >= self.limits.keep_alive_s:
            self.transport.close()

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
