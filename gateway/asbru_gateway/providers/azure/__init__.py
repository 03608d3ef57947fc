"""Azure OpenAI: OpenAI's wire format behind deployments, ``api-version`` and an ``api-key`` header."""
