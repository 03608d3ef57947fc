"""Virtual keys as the hot path sees them: found by the hash of the presented value, one dict lookup.

Key values are never held: each key is known by ``sha256(salt + value)``. The operator renders one
salt per gateway (``sha256:SALT:HEX``); values from ``env:``/``file:`` references are hashed at
config time with a salt made once per process. Finding a key costs one hash per distinct salt
(usually one or two), whatever the number of keys.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from asbru_gateway.config.governance import Allowed
from asbru_gateway.core.identity import Identity
from asbru_gateway.governance.limits import Limit


def key_hash(salt: bytes, value: str) -> bytes:
    return hashlib.sha256(salt + value.encode()).digest()


def render_hash(salt: bytes, value: str) -> str:
    """The config form of a key's hash (what the operator writes): ``sha256:SALT:HEX``."""
    return f"sha256:{salt.hex()}:{key_hash(salt, value).hex()}"


def parse_hash(text: str) -> tuple[bytes, bytes]:
    _, salt, digest = text.split(":")
    return bytes.fromhex(salt), bytes.fromhex(digest)


class Globs:
    """A list of glob patterns compiled to one regex; an empty list matches everything."""

    __slots__ = ("_regex",)

    def __init__(self, patterns: Iterable[str]) -> None:
        joined = "|".join(fnmatch.translate(pattern) for pattern in patterns)
        self._regex = re.compile(joined) if joined else None

    def __call__(self, name: str) -> bool:
        return self._regex is None or self._regex.match(name) is not None

    @property
    def everything(self) -> bool:
        return self._regex is None


@dataclass(frozen=True, slots=True)
class Permissions:
    models: Globs
    routes: Globs
    providers: Globs

    @classmethod
    def of(cls, allowed: Allowed) -> Permissions:
        return cls(Globs(allowed.models), Globs(allowed.routes), Globs(allowed.providers))

    @property
    def everything(self) -> bool:
        return self.models.everything and self.routes.everything and self.providers.everything


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One virtual key, compiled: who it is, what it may call, and every limit it counts against."""

    name: str
    team: str | None
    identity: Identity
    permissions: Permissions
    limits: tuple[Limit, ...]
    """The key's own limits, then its team's (one atomic check for all of them)."""
    expires_at_s: float | None
    disabled: bool
    policy_header: bytes
    """``RateLimit-Policy`` of all of ``limits``, built once (empty: no limits)."""
    scopes: tuple[str, ...] = ()
    """Its accounting scopes: ``key/NAME`` and, with a team, ``team/NAME``."""
    cache: dict[str, Any] = field(default_factory=dict, compare=False)
    """Per-key metric children, resolved on first use."""


class KeyTable:
    """Key hash -> entry, per salt."""

    def __init__(self) -> None:
        self._by_salt: dict[bytes, dict[bytes, KeyEntry]] = {}
        self.entries: dict[str, KeyEntry] = {}

    def add(self, entry: KeyEntry, salt: bytes, digest: bytes) -> None:
        self._by_salt.setdefault(salt, {})[digest] = entry
        self.entries[entry.name] = entry

    def find(self, value: str) -> KeyEntry | None:
        encoded = value.encode()
        for salt, index in self._by_salt.items():
            entry = index.get(hashlib.sha256(salt + encoded).digest())
            if entry is not None:
                return entry
        return None
