"""The errors governance answers with; each one renders in the caller's own dialect.

Messages name the model, the route or the limit, never a key's value (nor its name on a 401: the
caller may not even own it).
"""

from __future__ import annotations

from asbru_gateway.errors import GatewayError, UnauthorizedError

__all__ = [
    "BudgetExceededError",
    "ForbiddenError",
    "GovernanceUnavailableError",
    "RateLimitedError",
    "UnauthorizedError",
]


class ForbiddenError(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class RateLimitedError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"
    trigger = "rate_limited"


class BudgetExceededError(RateLimitedError):
    code = "budget_exceeded"


class GovernanceUnavailableError(GatewayError):
    status = 503
    type = "server_error"
    code = "governance_unavailable"
