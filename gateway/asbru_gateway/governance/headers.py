"""The IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers): every limit of the key, by name.

    RateLimit-Policy: "key-requests-minute";q=10;w=60, "key-tokens-day-c";q=200;w=86400;qu="tokens"
    RateLimit: "key-requests-minute";r=7;t=60, "key-tokens-day-c";r=150;t=41234

``q`` is the quota, ``w`` the window in seconds, ``qu`` the unit (``requests`` by default,
``tokens``, or ``usd-micros`` for USD budgets, counted in micro-dollars); ``r`` what remains and ``t``
the seconds until what is counted now stops counting (the end of a calendar period; for a sliding
window its length, an upper bound). Names end in ``-c`` for calendar periods.
"""

from __future__ import annotations

import math

from asbru_gateway.governance.limits import REQUESTS, TOKENS, Limit

POLICY = b"ratelimit-policy"
STATE = b"ratelimit"
_UNITS = {REQUESTS: "", TOKENS: ';qu="tokens"'}
_USD_UNIT = ';qu="usd-micros"'


def policy_header(limits: tuple[Limit, ...]) -> bytes:
    items = [
        f'"{limit.policy}";q={limit.quota};w={limit.window.seconds}{_UNITS.get(limit.metric, _USD_UNIT)}'
        for limit in limits
    ]
    return ", ".join(items).encode()


def state_header(limits: tuple[Limit, ...], used: list[int], now_ms: int) -> bytes:
    items = []
    for limit, count in zip(limits, used, strict=True):
        window = limit.window
        reset_s = math.ceil(window.period(now_ms)[1] / 1000) if window.calendar else window.seconds
        items.append(f'"{limit.policy}";r={max(0, limit.quota - count)};t={reset_s}')
    return ", ".join(items).encode()
