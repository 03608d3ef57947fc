"""The OpenAI-compatible family as configuration: a base URL and an environment variable each.

Adding a vendor that speaks OpenAI's API is one line here, or no line at all: any provider of
type ``openai`` with its own ``base_url`` works the same.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    id: str
    base_url: str | None
    key_env: str | None
    base_url_env: str | None = None
    needs_key: bool = True


PRESETS: tuple[Preset, ...] = (
    Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    Preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "GROQ_BASE_URL"),
    Preset("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "MISTRAL_BASE_URL"),
    Preset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"),
    Preset("xai", "https://api.x.ai/v1", "XAI_API_KEY", "XAI_BASE_URL"),
    Preset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"),
    Preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"),
    Preset("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", "FIREWORKS_BASE_URL"),
    Preset("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", "CEREBRAS_BASE_URL"),
    Preset("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY", "PERPLEXITY_BASE_URL"),
    Preset("ollama", "http://127.0.0.1:11434/v1", None, "OLLAMA_BASE_URL", needs_key=False),
    Preset("vllm", None, "VLLM_API_KEY", "VLLM_BASE_URL", needs_key=False),
    Preset("lmstudio", "http://127.0.0.1:1234/v1", None, "LMSTUDIO_BASE_URL", needs_key=False),
)
