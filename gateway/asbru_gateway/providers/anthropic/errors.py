"""Anthropic error bodies -> OpenAI error terms.

Anthropic answers errors as ``{"type": "error", "error": {"type": ..., "message": ...}}``, both as
HTTP bodies and as ``error`` events inside a stream. Its error ``type`` becomes the OpenAI ``type``
(they share most names) and is kept verbatim as ``code``, so a client can still tell an
``overloaded_error`` (HTTP 529, kept) from any other ``api_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from asbru_gateway.errors import UpstreamError, openai_error_type_for_status
from asbru_gateway.providers.base import MappedError
from asbru_gateway.providers.openai.translator import openai_style_error

ERROR_TYPES: dict[str, str] = {
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "api_error": "api_error",
    "overloaded_error": "api_error",
}


def anthropic_error(status: int, body: bytes) -> MappedError:
    """Map a non-2xx answer, keeping ``status``; a body that is not Anthropic's gets a bounded excerpt."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return openai_style_error(status, body)
    return MappedError(status=status, **error_fields(error, status))


def error_fields(error: Mapping[str, Any], status: int) -> dict[str, Any]:
    """``message``, ``type``, ``code`` and ``param`` of an Anthropic ``error`` object."""
    upstream_type = error.get("type")
    code = upstream_type if isinstance(upstream_type, str) and upstream_type else None
    openai_type = ERROR_TYPES.get(code or "") or openai_error_type_for_status(status)
    message = error.get("message")
    return {
        "message": message if isinstance(message, str) and message else f"upstream returned HTTP {status}",
        "type": openai_type,
        "code": code,
        "param": None,
    }


def stream_error(error: object) -> UpstreamError:
    """An ``error`` event inside a stream (its ``error`` object) as the gateway's error: a 502 once
    the stream has begun, the upstream's type kept as ``code`` (``overloaded_error``...)."""
    fields = error_fields(error if isinstance(error, dict) else {}, 500)
    return UpstreamError(
        str(fields["message"]),
        status=502,
        type=str(fields["type"]),
        code=fields["code"],
        trigger="server_error",
    )
