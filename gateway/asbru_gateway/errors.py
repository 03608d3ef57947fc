"""The gateway's one exception tree. Every error a client can see renders as an OpenAI error body.

    GatewayError                      500 api_error         (root; never raised bare)
    ├── InvalidRequestError           400 invalid_request_error
    │   ├── BodyTooLargeError         413
    │   ├── ModelNotFoundError        404 model_not_found
    │   └── UnsupportedError          400 unsupported_for_provider
    ├── UnauthorizedError             401 invalid_api_key   (no valid key: governance, /mcp)
    ├── RouteNotFoundError            404 not_found
    ├── PoolFullError                 503 pool_full         (+ Retry-After)
    ├── UpstreamError                 upstream's status     (mapped by the provider's translator)
    │   ├── UpstreamTimeoutError      504 timeout
    │   │   └── DeadlineExceededError 504 deadline_exceeded (the request's own time is up)
    │   ├── UpstreamConnectError      502 connect_error
    │   └── UpstreamProtocolError     502 bad_upstream_response
    └── ConfigError                   (not HTTP: a config that cannot be applied)

``trigger`` says which typed fallback/retry class an error belongs to (``FallbackTrigger`` values),
so routing decisions never parse messages or status codes twice.
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None
    trigger: str | None = None
    param: str | None
    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        trigger: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        if trigger is not None:
            self.trigger = trigger
        self.param = param
        self.retry_after = retry_after

    def to_body(self) -> bytes:
        """The OpenAI error envelope: ``{"error": {"message", "type", "code", "param"}}``."""
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}
        )


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"


class BodyTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"


class ModelNotFoundError(InvalidRequestError):
    status = 404
    code = "model_not_found"


class UnsupportedError(InvalidRequestError):
    code = "unsupported_for_provider"


class UnauthorizedError(GatewayError):
    """The caller presented no valid credential (a virtual key, the /mcp token)."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class RouteNotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PoolFullError(GatewayError):
    status = 503
    type = "server_error"
    code = "pool_full"
    trigger = "pool_full"


class UpstreamError(GatewayError):
    """An upstream answered with an error; status, type and message are the upstream's, mapped."""

    type = "api_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"
    trigger: str | None = "timeout"


class DeadlineExceededError(UpstreamTimeoutError):
    """The request's deadline passed: no retry and no fallback can help any more."""

    code = "deadline_exceeded"
    trigger = None


class UpstreamConnectError(UpstreamError):
    status = 502
    type = "api_connection_error"
    code = "upstream_unreachable"
    trigger = "connect_error"


class UpstreamProtocolError(UpstreamError):
    status = 502
    type = "api_error"
    code = "bad_upstream_response"
    trigger = "server_error"


class ConfigError(GatewayError):
    """A config that cannot be applied: the gateway keeps serving the last good one."""


def trigger_for_status(status: int) -> str | None:
    """The fallback/retry class of an upstream HTTP status."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status in (401, 403):
        return "auth_error"
    if 400 <= status < 500:
        return "bad_request"
    return None


def openai_error_type_for_status(status: int) -> str:
    """OpenAI's error ``type`` for a status, used when an upstream gives none of its own."""
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"
