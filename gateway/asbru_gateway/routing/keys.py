"""Weighted random choice among a provider's keys that allow the requested model."""

from __future__ import annotations

import random

from asbru_gateway.errors import InvalidRequestError
from asbru_gateway.pool.provider_runtime import ProviderRuntime, ResolvedKey

_CACHE_LIMIT = 1024


def choose_key(runtime: ProviderRuntime, model: str) -> ResolvedKey | None:
    """A key for ``model``, weight-proportional; None for providers without keys.

    The eligible keys per model are computed once and cached on the runtime (bounded, since model
    names come from clients); the choice itself is one ``random.choices`` call.
    """
    if not runtime.keys:
        return None
    eligible = runtime.key_cache.get(model)
    if eligible is None:
        keys = tuple(key for key in runtime.keys if key.allows(model))
        eligible = (keys, tuple(key.weight for key in keys))
        if len(runtime.key_cache) < _CACHE_LIMIT:
            runtime.key_cache[model] = eligible
    keys, weights = eligible
    if not keys:
        raise InvalidRequestError(
            f"provider {runtime.name!r} has no key allowed for model {model!r}", param="model"
        )
    if len(keys) == 1:
        return keys[0]
    return random.choices(keys, weights)[0]  # noqa: S311 - load balancing, not cryptography
