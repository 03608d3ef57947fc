"""Gateway errors in Google's shape: ``{"error": {"code", "message", "status", "details"}}``.

``status`` is the canonical Google RPC code for the HTTP status (``INVALID_ARGUMENT``,
``RESOURCE_EXHAUSTED``, ...); when the error came from a Gemini upstream, its own canonical code
(kept as the error's ``code``) wins, so a pass-through error reads as Google wrote it. ``details``
carries what Google's own detail types have room for: the gateway's error code (``ErrorInfo``),
the offending field (``BadRequest``) and, inside a stream, the request id (``RequestInfo``).
google-genai raises ``ClientError``/``ServerError`` with ``code``, ``status`` and ``message`` from it.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.errors import GatewayError

_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
CANONICAL = frozenset(
    {
        *_BY_STATUS.values(),
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "ALREADY_EXISTS",
        "DATA_LOSS",
        "UNKNOWN",
    }
)
_TYPE = "type.googleapis.com/google.rpc."


def google_status(error: GatewayError) -> str:
    if error.code in CANONICAL:
        return error.code
    status = _BY_STATUS.get(error.status)
    if status is not None:
        return status
    return "INVALID_ARGUMENT" if error.status < 500 else "INTERNAL"


def error_object(error: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if error.code and error.code not in CANONICAL:
        details.append({"@type": _TYPE + "ErrorInfo", "reason": error.code, "domain": "asbru"})
    if error.param:
        violation = {"field": error.param, "description": error.message}
        details.append({"@type": _TYPE + "BadRequest", "fieldViolations": [violation]})
    if request_id:
        details.append({"@type": _TYPE + "RequestInfo", "requestId": request_id})
    body: dict[str, Any] = {"code": error.status, "message": error.message, "status": google_status(error)}
    if details:
        body["details"] = details
    return {"error": body}


def error_body(error: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(error_object(error, request_id))
