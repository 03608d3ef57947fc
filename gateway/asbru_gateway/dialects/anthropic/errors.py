"""Gateway errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

The Anthropic SDKs pick their exception class from the HTTP status and show ``error.type`` and
``error.message``; the status is the gateway's (the upstream's, when an upstream failed). An error
that came from an Anthropic upstream keeps its own type (the provider keeps it as ``code``), so an
``overloaded_error`` stays one; otherwise the type is Anthropic's name for the status.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.errors import GatewayError

ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
    }
)

_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(error: GatewayError) -> str:
    """Anthropic's ``error.type``: the upstream's own when it was Anthropic's, else by status."""
    if error.code is not None and error.code in ERROR_TYPES:
        return error.code
    by_status = _BY_STATUS.get(error.status)
    if by_status is not None:
        return by_status
    return "api_error" if error.status >= 500 else "invalid_request_error"


def error_payload(error: GatewayError, request_id: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type(error), "message": error.message},
    }
    if request_id:
        payload["request_id"] = request_id
    return payload


def error_body(error: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(error_payload(error, request_id))
