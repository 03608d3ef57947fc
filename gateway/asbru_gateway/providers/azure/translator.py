"""Azure OpenAI: the OpenAI translator with Azure's URL scheme and auth header.

``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` with ``api-key``.
The deployment is looked up in ``deployments`` (model -> deployment), defaulting to the model name.
"""

from __future__ import annotations

from asbru_gateway.config.model import ProviderConfig
from asbru_gateway.providers.base import Target
from asbru_gateway.providers.openai.translator import OpenAITranslator

DEFAULT_API_VERSION = "2024-10-21"


class AzureTranslator(OpenAITranslator):
    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(stream_usage=bool(config.options.get("stream_usage", True)))
        self._api_version = config.api_version or DEFAULT_API_VERSION
        self._deployments = config.deployments

    def auth_header(self, api_key: str) -> tuple[str, str]:
        return "api-key", api_key

    def url(self, target: Target, operation: str) -> str:
        deployment = self._deployments.get(target.model, target.model)
        return (
            f"{target.base_url}/openai/deployments/{deployment}/{operation}?api-version={self._api_version}"
        )
