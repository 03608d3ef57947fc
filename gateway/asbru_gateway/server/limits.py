"""How much and how long a client may take to send a request, before it is answered or dropped."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Limits of the client-facing HTTP connection (the config's ``server`` limits the bodies)."""

    max_header_bytes: int = 64 * 1024
    """Request line and headers together; beyond it the answer is 431 and the connection closes.
    Checked as bytes arrive, so an 80 MB header costs nothing but the first 64 KB."""
    header_timeout_s: float = 10.0
    """From the first byte of a request (or a new connection) to its last header. A slowloris
    client that trickles headers is dropped with 408 after this, however steadily it trickles."""
    body_timeout_s: float = 60.0
    """From the last header to the last byte of the body."""
    keep_alive_s: float = 5.0
    """An idle keep-alive connection is closed after this."""

    @classmethod
    def from_environment(cls) -> ServerLimits:
        defaults = cls()
        return cls(
            max_header_bytes=int(os.environ.get("ASBRU_MAX_HEADER_BYTES", defaults.max_header_bytes)),
            header_timeout_s=float(os.environ.get("ASBRU_HEADER_TIMEOUT_S", defaults.header_timeout_s)),
            body_timeout_s=float(os.environ.get("ASBRU_BODY_TIMEOUT_S", defaults.body_timeout_s)),
            keep_alive_s=float(os.environ.get("ASBRU_KEEP_ALIVE_S", defaults.keep_alive_s)),
        )
