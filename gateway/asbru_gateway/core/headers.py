"""The caller's request headers as plugins see them: read-only, lower-case names, credentials masked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-bf-vk",
        "cookie",
        "x-asbru-admin-token",
    }
)
MASK = "***"


class RequestHeaders(Mapping[str, str]):
    """Built from the raw ASGI headers the first time someone reads it (most requests never do).

    Repeated headers are joined with ``, `` (RFC 9110). Credential headers read ``***``: a plugin
    that logs headers cannot leak a key; the credential itself is ``LLMRequest.credential``.
    """

    __slots__ = ("_map",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        values: dict[str, str] = {}
        for name_bytes, value_bytes in raw:
            name = name_bytes.decode("latin-1").lower()
            value = MASK if name in CREDENTIAL_HEADERS else value_bytes.decode("latin-1")
            values[name] = f"{values[name]}, {value}" if name in values else value
        self._map = values

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"RequestHeaders({self._map!r})"
