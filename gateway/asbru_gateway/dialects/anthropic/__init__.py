"""Anthropic Messages, as a client dialect (the ``anthropic`` SDK, LangChain's ``ChatAnthropic``).

``dialect`` is the registry entry; ``request`` and ``messages`` translate a request to the core
when it cannot pass through; ``reply``, ``stream`` and ``errors`` render answers in Anthropic's shape.
"""

from asbru_gateway.dialects.anthropic.dialect import AnthropicMessagesDialect

__all__ = ["AnthropicMessagesDialect"]
