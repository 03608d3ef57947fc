"""``GET /v1/models``: routes and configured provider models, OpenAI ``list`` format. Never a key."""

from __future__ import annotations

from typing import Any

from asbru_gateway.runtime import Snapshot


def list_models(snapshot: Snapshot) -> dict[str, Any]:
    created = 0
    data: list[dict[str, Any]] = [
        {"id": route.name, "object": "model", "created": created, "owned_by": "asbru-route"}
        for route in snapshot.config.routes
    ]
    for provider in snapshot.config.providers:
        data.extend(
            {
                "id": f"{provider.name}/{model}",
                "object": "model",
                "created": created,
                "owned_by": provider.name,
            }
            for model in provider.models
        )
    return {"object": "list", "data": data}
