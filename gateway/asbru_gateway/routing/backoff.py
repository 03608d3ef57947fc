"""How long to wait before retrying the same target: exponential backoff with jitter, or Retry-After."""

from __future__ import annotations

import random

from asbru_gateway.config.model import NetworkConfig
from asbru_gateway.errors import GatewayError

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connect_error"})


def retry_delay(error: GatewayError, attempt: int, network: NetworkConfig) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None if this error is not to be retried here.

    An upstream ``Retry-After`` is honoured exactly when it is within ``retry_after_max_s``; a longer
    one is not waited for (the request moves on to a fallback instead of hanging). Otherwise the
    wait is ``initial * 2**attempt`` capped at ``backoff_max_s``, with "equal jitter": half fixed,
    half random, so retries from many clients spread out but never collapse to zero.
    """
    if error.trigger not in RETRYABLE or attempt >= network.max_retries:
        return None
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= network.retry_after_max_s else None
    capped = min(network.backoff_max_s, network.backoff_initial_s * (2.0**attempt))
    return capped / 2 + random.uniform(0, capped / 2)  # noqa: S311
