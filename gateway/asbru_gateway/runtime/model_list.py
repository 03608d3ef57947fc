"""The models a snapshot serves, as ``(id, owner)`` pairs: routes, then configured provider models.

Each dialect renders the list in its own shape (OpenAI ``list``, Anthropic ``data`` with
``display_name``, Gemini ``models``). Never a key.
"""

from __future__ import annotations

from asbru_gateway.runtime.gateway import Snapshot


def model_list(snapshot: Snapshot) -> list[tuple[str, str]]:
    models = [(route.name, "asbru-route") for route in snapshot.config.routes]
    for provider in snapshot.config.providers:
        models.extend((f"{provider.name}/{model}", provider.name) for model in provider.models)
    return models
