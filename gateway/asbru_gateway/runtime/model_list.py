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


def find_model(snapshot: Snapshot, model_id: str) -> tuple[str, str] | None:
    """The ``(id, owner)`` of a model the snapshot serves: a listed one, or ``provider/anything``."""
    for entry in model_list(snapshot):
        if entry[0] == model_id:
            return entry
    provider, slash, rest = model_id.partition("/")
    if slash and rest and snapshot.config.provider(provider) is not None:
        return model_id, provider
    return None
