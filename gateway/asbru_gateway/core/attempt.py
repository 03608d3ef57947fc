"""``Attempt``: one upstream call as the per-attempt plugin hooks see it, before and after it is sent."""

from __future__ import annotations

from typing import Any

from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import GatewayError


class Attempt:
    """Created only when some plugin has attempt hooks (it costs nothing otherwise).

    Before the call a hook may add ``headers`` (sent with this attempt only: a per-attempt dict,
    so nothing one request adds can reach another) or pin ``key`` to one of the provider's key
    names (the request is then rebuilt with that key). After it, ``status``, ``error``,
    ``latency_s`` and ``usage`` say how it went.
    """

    __slots__ = (
        "error",
        "headers",
        "key",
        "latency_s",
        "model",
        "number",
        "provider",
        "status",
        "stream",
        "url",
        "usage",
    )

    def __init__(self, *, provider: str, model: str, key: str | None, url: str, number: int, stream: bool):
        self.provider = provider
        self.model = model
        self.key = key
        """The provider key's *name* chosen for this attempt; a hook may set another name to pin it."""
        self.url = url
        self.number = number
        """1 for the first upstream call of the request, then 2, 3, ... across retries and fallbacks."""
        self.stream = stream
        self.headers: dict[str, str] = {}
        """Extra upstream headers for this attempt (e.g. a trace header). Credentials are refused."""
        self.status: int | None = None
        self.error: GatewayError | None = None
        self.latency_s: float | None = None
        self.usage: Usage | None = None

    def describe(self) -> dict[str, Any]:
        """A log-safe summary (no key value, no body)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "key": self.key,
            "number": self.number,
            "status": self.status,
            "error": None if self.error is None else self.error.code or self.error.type,
        }
