"""Noticing a client that went away, at no cost per request.

The ASGI server does not cancel a handler whose client left; a handler could learn of it only by
reading ``http.disconnect`` from ``receive``, which needs a task (or a timer) of its own per
request. Under load that is what grew the cost per request with the number of open connections:
every request still running after half a second got a watch task (measured in the load gate: ~50 µs
of ~450 µs per request at 1,000 connections).

The connection knows anyway: Asbru's HTTP protocol (``server.protocol``) sees ``connection_lost``.
So a handler puts its task in the request's scope (one dict write), and when the connection is lost
before the response is complete the protocol calls :func:`client_left`, which marks the scope and
cancels the handler: the pool slot, queue place and upstream connection are freed at once.
``departed`` tells the handler that the cancellation was the client's and not the server's shutdown.

Only ``asbru serve`` (``server.run``) uses that protocol; under another ASGI server a departed
client's request runs to its end (or its deadline), as plain ASGI has it.
"""

from __future__ import annotations

import asyncio

from asbru_gateway.api.types import Scope

_HANDLER = "asbru.handler"
_DEPARTED = "asbru.departed"


def watch(scope: Scope, handler: asyncio.Task[object]) -> None:
    """Let the connection cancel ``handler`` if its client leaves before the response is complete."""
    scope[_HANDLER] = handler


def unwatch(scope: Scope) -> None:
    """The part a departure may cut short is over (what follows, such as post-response hooks, runs on)."""
    scope.pop(_HANDLER, None)


def departed(scope: Scope) -> bool:
    return _DEPARTED in scope


def client_left(scope: Scope) -> None:
    """Called by the connection when it is lost mid-request: cancel the handler, if one is watching."""
    handler = scope.get(_HANDLER)
    if handler is not None and not handler.done():
        scope[_DEPARTED] = True
        handler.cancel()
