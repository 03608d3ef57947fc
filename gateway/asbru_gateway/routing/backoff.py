"""Whether, and after how long, to retry the same target: the retry-in-place policy.

Retrying in place is worth it only when the next try is likely to succeed soon: a refused or reset
connection (the upstream restarts, a load balancer rotates), or a 429 whose ``Retry-After`` is short.
Everything else (a 5xx, a timeout, a long ``Retry-After``) goes to the next target *first*, while
there is one, instead of making the client wait for retries on a target that is failing: a 3 s
timeout then costs 3 s, not 3 s x attempts. When no target is left, the remaining retries are spent
in place, with backoff, as before.
"""

from __future__ import annotations

import random

from asbru_gateway.config.model import NetworkConfig
from asbru_gateway.errors import GatewayError

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connect_error"})


def retry_delay(
    error: GatewayError, attempt: int, network: NetworkConfig, *, can_fall_back: bool = False
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` on the same target, or None to stop here.

    ``can_fall_back``: another target would take over if this one gives up. An upstream
    ``Retry-After`` is honoured exactly when within ``retry_in_place_max_s`` (or, with no fallback
    left, ``retry_after_max_s``); a longer one is not waited for. Otherwise the wait is
    ``initial * 2**attempt`` capped at ``backoff_max_s``, with "equal jitter": half fixed, half
    random, so retries from many clients spread out but never collapse to zero.
    """
    if error.trigger not in RETRYABLE or attempt >= network.max_retries:
        return None
    if error.retry_after is not None:
        limit = network.retry_in_place_max_s if can_fall_back else network.retry_after_max_s
        return error.retry_after if error.retry_after <= limit else None
    if can_fall_back and error.trigger != "connect_error":
        return None
    capped = min(network.backoff_max_s, network.backoff_initial_s * (2.0**attempt))
    return capped / 2 + random.uniform(0, capped / 2)  # noqa: S311
