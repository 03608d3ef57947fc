"""Tool names as models and clients see them: ``<server>__<tool>``, unique, within providers' limits.

Server names never contain ``_`` (``config.mcp.ServerName``), so the first ``__`` always splits a
name back into server and tool. Providers accept ``[A-Za-z0-9_-]`` (Gemini also ``.`` and ``:``)
up to 64 characters; an MCP tool name may hold other characters (``.``, ``/``) or be longer. Such
names are rewritten (other characters to ``_``) and, when too long or when the rewrite collides
with another tool of the same server, shortened and suffixed with a hash of the original name, so
two different tools never get one name. The table of exposed names -> (server, tool) is the only
way back; names are never parsed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable

SEPARATOR = "__"
MAX_LENGTH = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def exposed_names(server: str, tools: Iterable[str]) -> dict[str, str]:
    """Original tool name -> exposed name, for one server's tools (unique within the server)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    prefix = server + SEPARATOR
    for tool in tools:
        candidate = prefix + tool
        if len(candidate) > MAX_LENGTH or _INVALID.search(tool) or candidate in taken:
            candidate = _hashed(prefix, tool)
        taken.add(candidate)
        out[tool] = candidate
    return out


def _hashed(prefix: str, tool: str) -> str:
    digest = hashlib.sha256(tool.encode()).hexdigest()[:8]
    room = MAX_LENGTH - len(prefix) - len(digest) - 1
    return f"{prefix}{_INVALID.sub('_', tool)[:room]}_{digest}"


def matches(patterns: Iterable[str], name: str) -> bool:
    """Whether ``name`` matches one of ``patterns`` (``*`` and ``?`` glob, case-sensitive)."""
    return any(pattern in (name, "*") or fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
