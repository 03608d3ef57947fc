"""Regenerate ``governance/prices.json`` from LiteLLM's ``model_prices_and_context_window.json``.

    python scripts/update_prices.py PATH/TO/model_prices_and_context_window.json

LiteLLM publishes that file under the MIT licence (see NOTICE): prices are facts, so only the data
is taken, trimmed to token prices of the providers Asbru has types for, in USD per million tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "gateway/asbru_gateway/governance/prices.json"
PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "xai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cerebras": "cerebras",
    "perplexity": "perplexity",
}
"""LiteLLM provider id -> Asbru provider type."""
MODES = {"chat", "completion", "embedding", "responses"}


def per_mtok(value: object) -> float | None:
    return round(float(value) * 1_000_000, 6) if isinstance(value, int | float) else None


def main(source: str) -> None:
    data = json.loads(Path(source).read_text())
    table: dict[str, dict[str, list[float | None]]] = {}
    for name, entry in sorted(data.items()):
        if not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        provider = PROVIDERS.get(str(entry.get("litellm_provider")))
        prompt = per_mtok(entry.get("input_cost_per_token"))
        if provider is None or prompt is None:
            continue
        completion = per_mtok(entry.get("output_cost_per_token")) or 0.0
        model = name.split("/", 1)[1] if name.startswith(f"{entry['litellm_provider']}/") else name
        table.setdefault(provider, {})[model] = [
            prompt,
            completion,
            per_mtok(entry.get("cache_read_input_token_cost")),
        ]
    document = {
        "source": "LiteLLM model_prices_and_context_window.json (MIT), token prices only",
        "unit": "USD per million tokens: [input, output, cached input or null]",
        "providers": table,
    }
    lines = [
        f'{{"source":{json.dumps(document["source"])},"unit":{json.dumps(document["unit"])},"providers":{{'
    ]
    for index, (provider, models) in enumerate(sorted(table.items())):
        lines.append(f"{json.dumps(provider)}:{{")
        rows = [f"{json.dumps(model)}:{json.dumps(price)}" for model, price in sorted(models.items())]
        lines.append(",\n".join(rows))
        lines.append("}" + ("," if index < len(table) - 1 else ""))
    lines.append("}}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{sum(len(models) for models in table.values())} models of {len(table)} providers -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
