"""Model prices: the shipped table (``prices.json``, LiteLLM's data, see NOTICE) plus config overrides.

A price is looked up once per (provider, model) and kept: the table is a dict of dicts, the
overrides a short list of globs. Unknown models cost 0 (and say so in the management API).
"""

from __future__ import annotations

import fnmatch
import functools
import json
from dataclasses import dataclass
from importlib import resources

from asbru_gateway.config.governance import PriceOverride
from asbru_gateway.core.usage import Usage


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    source: str
    """``override`` or ``table`` (the shipped prices)."""

    def micro_usd(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Micro-dollars for these tokens (a price per million tokens is micro-dollars per token)."""
        return round(prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok)


FREE = Price(0.0, 0.0, "unknown")


@functools.cache
def shipped_prices() -> dict[str, dict[str, list[float | None]]]:
    """Provider type -> model -> [input, output, cached input] USD per million tokens."""
    text = resources.files("asbru_gateway.governance").joinpath("prices.json").read_text()
    table: dict[str, dict[str, list[float | None]]] = json.loads(text)["providers"]
    return table


class PriceBook:
    """Prices for one config revision: overrides first (most specific), then the shipped table."""

    def __init__(self, overrides: tuple[PriceOverride, ...], provider_types: dict[str, str]) -> None:
        def rank(entry: PriceOverride) -> int:
            return 0 if entry.provider and entry.model != "*" else 1 if entry.provider is None else 2

        self._overrides = sorted(overrides, key=rank)
        self._types = provider_types
        self._cache: dict[tuple[str, str], Price] = {}

    def price(self, provider: str, model: str) -> Price:
        key = (provider, model)
        found = self._cache.get(key)
        if found is None:
            found = self._lookup(provider, model)
            if len(self._cache) < 10_000:
                self._cache[key] = found
        return found

    def cost(self, provider: str | None, model: str | None, usage: Usage | None) -> int:
        """Micro-dollars for ``usage`` on ``provider``/``model`` (0 when any of them is unknown)."""
        if usage is None or not provider or not model:
            return 0
        return self.price(provider, model).micro_usd(usage.prompt_tokens, usage.completion_tokens)

    def _lookup(self, provider: str, model: str) -> Price:
        for entry in self._overrides:
            if entry.provider not in (None, provider) or not fnmatch.fnmatchcase(model, entry.model):
                continue
            return Price(entry.input_per_mtok, entry.output_per_mtok, "override")
        models = shipped_prices().get(self._types.get(provider, ""), {})
        row = models.get(model)
        if row is None:
            return FREE
        return Price(float(row[0] or 0.0), float(row[1] or 0.0), "table")
