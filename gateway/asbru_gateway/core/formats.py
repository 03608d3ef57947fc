"""Wire formats, by id: what a body or a stream's bytes are written in.

``CORE`` is the core schema (``schema.py``) on the wire: OpenAI chat completions JSON, and OpenAI SSE
(``data: {...}\\n\\n`` ... ``data: [DONE]\\n\\n``) for streams. The others are client dialects' own
formats that a provider of the same family can take and give back unchanged (pass-through): the
gateway then forwards the client's body with only the model rewritten, so fields it does not model
(``cache_control``, ``thinking``, new beta fields) reach the provider untouched.
"""

from __future__ import annotations

from typing import Final

CORE: Final = "core"
OPENAI_EMBEDDINGS: Final = "openai.embeddings"
OPENAI_COMPLETIONS: Final = "openai.completions"
OPENAI_RESPONSES: Final = "openai.responses"
ANTHROPIC_MESSAGES: Final = "anthropic.messages"
ANTHROPIC_COUNT_TOKENS: Final = "anthropic.count_tokens"
GEMINI_GENERATE: Final = "gemini.generate_content"
GEMINI_EMBED: Final = "gemini.embed_content"
GEMINI_COUNT_TOKENS: Final = "gemini.count_tokens"

FAMILY_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "openai": ("openai", "azure"),
    "anthropic": ("anthropic",),
    "gemini": ("gemini",),
}
"""Provider types a bare model name resolves to under each drop-in prefix, in order of preference
(routing resolves names with it; governance checks the provider a name resolves to)."""
