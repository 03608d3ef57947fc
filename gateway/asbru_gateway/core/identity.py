"""Who is calling: set by the plugin that authenticates the caller (governance), read by the rest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

MCP_ATTRIBUTE = "mcp"
"""``Identity.attributes`` key of a caller's MCP allow-list: server name -> tool patterns (glob).

Set by the authenticating plugin (governance: a virtual key's ``mcp``), read by ``mcp.access``.
Here, below both, so neither has to import the other."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller. Never holds the credential itself, only what it resolved to."""

    key: str
    """The virtual key's name (not its value)."""
    team: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    """What the authenticating plugin knows of the caller (allowed models, limits): plugin-defined."""


class ClientCredential:
    """The credential the client presented (bearer token, ``x-api-key``, ...). Masked when printed."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source
        """Where it came from: ``authorization``, ``x-api-key``, ``x-goog-api-key``, ``query``, ..."""

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"ClientCredential('***', source={self.source!r})"

    __str__ = __repr__


_CREDENTIAL_SOURCES = (b"x-bf-vk", b"authorization", b"x-api-key", b"x-goog-api-key")


def read_credential(raw_headers: Iterable[tuple[bytes, bytes]], query: bytes) -> ClientCredential | None:
    """The client's credential from wherever its SDK puts it (see ``LLMRequest.credential``)."""
    found: dict[bytes, bytes] = {}
    for name, value in raw_headers:
        lowered = name.lower()
        if lowered in _CREDENTIAL_SOURCES and lowered not in found:
            found[lowered] = value
    for source in _CREDENTIAL_SOURCES:
        raw = found.get(source)
        if not raw:
            continue
        text = raw.decode("latin-1").strip()
        if source == b"authorization":
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                continue
            text = token.strip()
        if text:
            return ClientCredential(text, source.decode())
    if query and query.find(b"key=") >= 0:  # find, not in: see providers.sse
        for field_name, field_value in parse_qsl(query.decode("latin-1")):
            if field_name == "key" and field_value:
                return ClientCredential(field_value, "query")
    return None
