"""OpenAI's Responses API as a client dialect: ``dialect.py`` (the registry entry), ``request.py`` and
``items.py`` (request -> core), ``response.py`` (core answer -> ``Response``), ``stream.py`` (core
chunks -> Responses streaming events)."""

from asbru_gateway.dialects.openai_responses.dialect import OpenAIResponsesDialect

__all__ = ["OpenAIResponsesDialect"]
