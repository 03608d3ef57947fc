"""Gemini error bodies -> OpenAI error terms.

Google APIs answer errors as ``{"error": {"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED"}}``
(the streaming endpoint without ``alt=sse`` wraps it in a one-element array). The canonical
``status`` string is the precise reason, so it picks the OpenAI ``type`` and becomes ``code``;
the HTTP status stays the upstream's, because routing decides retries and fallbacks on it.
"""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.errors import openai_error_type_for_status
from asbru_gateway.providers.base import MappedError

JSON = dict[str, Any]

_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "INTERNAL": "api_error",
    "UNAVAILABLE": "api_error",
    "DEADLINE_EXCEEDED": "api_error",
}
_EXCERPT_BYTES = 500


def map_error(status: int, body: bytes) -> MappedError:
    """A non-2xx Gemini answer in OpenAI terms; a body that is not a Google error -> bounded excerpt."""
    error = _error_object(body)
    if error is not None:
        return error_from_object(error, status)
    text = body[:_EXCERPT_BYTES].decode("utf-8", "replace").strip()
    message = f"upstream returned HTTP {status}" + (f": {text}" if text else "")
    return MappedError(status=status, message=message, type=openai_error_type_for_status(status))


def error_from_object(error: JSON, status: int) -> MappedError:
    """One Google ``error`` object (also what a stream chunk may carry) as a MappedError."""
    google_status = error.get("status")
    code = google_status if isinstance(google_status, str) and google_status else None
    error_type = _TYPES.get(code or "") or openai_error_type_for_status(status)
    if _api_key_invalid(error):  # Gemini says 400 INVALID_ARGUMENT for a bad key; it is an auth problem
        error_type = "authentication_error"
    message = error.get("message")
    return MappedError(
        status=status,
        message=message if isinstance(message, str) and message else f"upstream returned HTTP {status}",
        type=error_type,
        code=code,
        retry_after=_retry_delay(error),
    )


def _retry_delay(error: JSON) -> float | None:
    """Google's ``RetryInfo`` detail (``"retryDelay": "13s"``): how long a 429 asks us to wait."""
    details = error.get("details")
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = item.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(0.0, float(delay[:-1]))
                except ValueError:
                    return None
    return None


def _error_object(body: bytes) -> JSON | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def _api_key_invalid(error: JSON) -> bool:
    details = error.get("details")
    if not isinstance(details, list):
        return False
    return any(isinstance(item, dict) and item.get("reason") == "API_KEY_INVALID" for item in details)


def in_stream_status(error: JSON) -> int:
    """The HTTP status an in-stream error object states (``code``), else 500."""
    code = error.get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else 500
