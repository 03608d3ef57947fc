"""Secret references: resolved when a config is applied, never stored in the config, never printed.

A config names where a credential lives (``env:NAME``, ``file:/path``, ``secret:KEY``); the
``SecretResolver`` turns that into a ``SecretValue`` whose ``repr`` is masked, so a value that
ends up in a log line, an exception or a debug dump shows ``***`` instead of the key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from asbru_gateway.config.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A credential. ``str()``/``repr()`` are masked; ``reveal()`` is the only way to the value."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class SecretResolver:
    """Resolves secret references. ``mapping`` backs ``secret:KEY`` (the Kubernetes Secret's data)."""

    mapping: Mapping[str, str] = field(default_factory=dict, repr=False)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def resolve(self, ref: str) -> SecretValue:
        scheme, _, name = ref.partition(":")
        if scheme == "env":
            value = self.environ.get(name)
            if value is None:
                raise ConfigError(f"secret reference {ref!r}: environment variable is not set")
        elif scheme == "file":
            try:
                value = Path(name).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigError(f"secret reference {ref!r}: {error.strerror}") from None
            except UnicodeDecodeError:  # never quote the bytes: they are the secret
                raise ConfigError(f"secret reference {ref!r}: file is not UTF-8 text") from None
        elif scheme == "secret":
            value = self.mapping.get(name)
            if value is None:
                raise ConfigError(f"secret reference {ref!r}: key not found in the gateway's secrets")
        else:
            raise ConfigError(f"secret reference {ref!r}: unknown scheme {scheme!r}")
        if not value:
            raise ConfigError(f"secret reference {ref!r}: value is empty")
        return SecretValue(value)

    def digest(self) -> str:
        """Hash of the ``secret:`` mapping: part of the served revision, so a key rotation is visible."""
        hasher = hashlib.sha256()
        for key in sorted(self.mapping):
            hasher.update(key.encode() + b"\0" + self.mapping[key].encode() + b"\0")
        return hasher.hexdigest()[:16]


def served_revision(config_revision: str, secrets: Mapping[str, str], files: Iterable[str] = ()) -> str:
    """The revision a gateway reports: the config's hash, combined with its Secret's hash if any,
    and with the contents of the ``file:`` secrets it references, if any.

    The operator computes the same function over what it renders (its configs reference no files),
    so ``Programmed`` compares like with like; rotating a key in a Secret or in a referenced file
    (same config, new credential) is a new revision, so the gateway rebuilds what uses it.
    """
    revision = config_revision
    if secrets:
        digest = SecretResolver(mapping=secrets).digest()
        revision = hashlib.sha256(f"{revision}:{digest}".encode()).hexdigest()[:16]
    paths = sorted(set(files))
    if paths:
        hasher = hashlib.sha256(revision.encode())
        for path in paths:
            hasher.update(b"\0" + path.encode() + b"\0" + _file_bytes(path))
        revision = hasher.hexdigest()[:16]
    return revision


def file_refs(refs: Iterable[str]) -> list[str]:
    """The paths of the ``file:`` references among ``refs`` (watched, and part of the revision)."""
    return sorted({ref.removeprefix("file:") for ref in refs if ref.startswith("file:")})


def _file_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b"\0unreadable"  # resolving it will fail with a clear error; the revision still moves
