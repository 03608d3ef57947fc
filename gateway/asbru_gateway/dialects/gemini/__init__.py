"""The Gemini API dialect (google-genai); ``dialect.py`` is the entry point."""

from asbru_gateway.dialects.gemini.dialect import GeminiDialect

__all__ = ["GeminiDialect"]
