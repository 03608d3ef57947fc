"""Client dialects by id, and where each is mounted: the paths an SDK calls with its ``base_url``.

Mount points, as Bifrost has them, so that an SDK works with only its ``base_url`` moved:

=======================  ==========================================================  ===========
prefix                   dialects                                                    family
=======================  ==========================================================  ===========
(none), ``/v1``          OpenAI (chat, embeddings, models, completions, responses)   --
``/openai[/v1]``         OpenAI; also ``/openai/deployments/{id}/...`` (Azure style)  openai
``/anthropic/v1``        Anthropic Messages (messages, count_tokens, models)         anthropic
``/genai/v1beta``, ``/v1``  Gemini (generateContent, stream, embed, countTokens)     gemini
``/litellm``, ``/langchain``, ``/pydanticai``  every dialect under it (those libraries call any)
=======================  ==========================================================  ===========

Under a prefix with a family, a bare model name with no route of that name goes to the first
configured provider of the family (``routing.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass

from asbru_gateway.dialects.anthropic import AnthropicMessagesDialect
from asbru_gateway.dialects.base import Dialect, Endpoint
from asbru_gateway.dialects.gemini import GeminiDialect
from asbru_gateway.dialects.openai_chat import OpenAIChatDialect
from asbru_gateway.dialects.openai_completions import OpenAICompletionsDialect
from asbru_gateway.dialects.openai_responses import OpenAIResponsesDialect

OPENAI_DIALECTS: tuple[Dialect, ...] = (
    OpenAIChatDialect(),
    OpenAIResponsesDialect(),
    OpenAICompletionsDialect(),
)
ANTHROPIC_DIALECTS: tuple[Dialect, ...] = (AnthropicMessagesDialect(),)
GEMINI_DIALECTS: tuple[Dialect, ...] = (GeminiDialect(),)
META_PREFIXES = ("/litellm", "/langchain", "/pydanticai")


@dataclass(frozen=True, slots=True)
class Mount:
    """One served path: which dialect answers it, its endpoint, and the prefix's provider family."""

    dialect: Dialect
    endpoint: Endpoint
    family: str | None


@dataclass(frozen=True, slots=True)
class Root:
    """Where a group of dialects is mounted, and the family a bare model name resolves to there."""

    path: str
    dialects: tuple[Dialect, ...]
    family: str | None


def roots() -> list[Root]:
    out = [
        Root("", OPENAI_DIALECTS, None),
        Root("/v1", OPENAI_DIALECTS, None),
        Root("/openai", OPENAI_DIALECTS, "openai"),
        Root("/openai/v1", OPENAI_DIALECTS, "openai"),
        Root("/anthropic/v1", ANTHROPIC_DIALECTS, "anthropic"),
        Root("/genai/v1beta", GEMINI_DIALECTS, "gemini"),
        Root("/genai/v1", GEMINI_DIALECTS, "gemini"),
    ]
    for meta in META_PREFIXES:
        out += [
            Root(meta, OPENAI_DIALECTS, "openai"),
            Root(f"{meta}/v1", OPENAI_DIALECTS, "openai"),
            Root(f"{meta}/openai", OPENAI_DIALECTS, "openai"),
            Root(f"{meta}/openai/v1", OPENAI_DIALECTS, "openai"),
            Root(f"{meta}/v1", ANTHROPIC_DIALECTS, "anthropic"),
            Root(f"{meta}/anthropic/v1", ANTHROPIC_DIALECTS, "anthropic"),
            Root(f"{meta}/v1beta", GEMINI_DIALECTS, "gemini"),
            Root(f"{meta}/genai/v1beta", GEMINI_DIALECTS, "gemini"),
            Root(f"{meta}/genai/v1", GEMINI_DIALECTS, "gemini"),
        ]
    return out


AZURE_DEPLOYMENT_ROOTS = ("/openai/deployments/", *(f"{meta}/openai/deployments/" for meta in META_PREFIXES))
"""``{root}{deployment}/chat/completions``: the deployment id is the model (Azure's SDK shape)."""


def dialect(dialect_id: str) -> Dialect:
    for candidate in (*OPENAI_DIALECTS, *ANTHROPIC_DIALECTS, *GEMINI_DIALECTS):
        if candidate.id == dialect_id:
            return candidate
    raise KeyError(dialect_id)
