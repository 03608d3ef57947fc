"""Secret references: resolved when a config is applied, never stored in the config, never printed.

A config names where a credential lives (``env:NAME``, ``file:/path``, ``secret:KEY``); the
``SecretResolver`` turns that into a ``SecretValue`` whose ``repr`` is masked, so a value that
ends up in a log line, an exception or a debug dump shows ``***`` instead of the key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
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


def served_revision(config_revision: str, secrets: Mapping[str, str]) -> str:
    """The revision a gateway reports: the config's hash, combined with its Secret's hash if any.

    The operator computes the same function over what it renders, so ``Programmed`` compares like
    with like, and rotating a key in a Secret (same config, new credential) is a new revision.
    """
    if not secrets:
        return config_revision
    digest = SecretResolver(mapping=secrets).digest()
    return hashlib.sha256(f"{config_revision}:{digest}".encode()).hexdigest()[:16]
