"""A ``secretKeyRef`` that does not resolve (yet): what ``ResolvedRefs=False`` names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MissingRef:
    """A key whose Secret, or whose key in that Secret, does not exist (yet)."""

    provider: str
    """The name of the object that refers to it (an LLMProvider unless ``kind`` says otherwise)."""
    secret: str
    key: str
    secret_exists: bool
    kind: str = "LLMProvider"

    def describe(self) -> str:
        owner = f"{self.kind} {self.provider!r}"
        if not self.secret_exists:
            return f"Secret {self.secret!r} not found ({owner})"
        return f"key {self.key!r} not found in Secret {self.secret!r} ({owner})"
