"""LLMVirtualKey and LLMTeam: a change re-renders the namespace's gateways; a key gets its Secret.

Event handlers, like the other consumed kinds. A key's Secret (generated, or the user's
``secretRef``) is indexed, so rotating the value in it re-renders the gateways (the hash changes).
"""

from __future__ import annotations

from typing import Any

import kopf

from asbru_operator.context import context_of
from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.handlers import secret
from asbru_operator.handlers.members import on_member_event
from asbru_operator.render.governance import key_secret
from asbru_operator.virtual_keys import ensure_key_secret, write_key_secret_name

INDEX = "asbru_virtual_key_secrets"


async def on_key_event(*, memo: Any, event: Any, **_: Any) -> None:
    body = event.get("object") or {}
    meta = body.get("metadata") or {}
    if event.get("type") != "DELETED" and not meta.get("deletionTimestamp"):
        ctx = context_of(memo)
        await write_key_secret_name(ctx.api, body, await ensure_key_secret(ctx.api, body))
    # Conditions: the namespace refresh this triggers (on a spec change) writes them for every key.
    await on_member_event("llmvirtualkeys", memo, event)


async def on_team_event(*, memo: Any, event: Any, **_: Any) -> None:
    await on_member_event("llmteams", memo, event)


def key_secrets(*, namespace: str | None, name: str, body: Any, **_: Any) -> dict[tuple[str, str], str]:
    """Index: (namespace, Secret name) -> the key whose value it holds."""
    return {(str(namespace), key_secret(body).name): name}


def holds_a_key(*, namespace: str | None, name: str, **kwargs: Any) -> bool:
    refs: kopf.Index[Any, Any] = kwargs[INDEX]
    return (str(namespace), name) in refs


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(GROUP, VERSION, "llmvirtualkeys", registry=registry, id="virtual-key-event")(on_key_event)
    kopf.on.event(GROUP, VERSION, "llmteams", registry=registry, id="team-event")(on_team_event)
    kopf.index(GROUP, VERSION, "llmvirtualkeys", registry=registry, id=INDEX)(key_secrets)
    # The same handler as for providers' Secrets: a changed value re-renders the namespace.
    kopf.on.event("v1", "secrets", registry=registry, when=holds_a_key, id="key-secret-event")(
        secret.on_secret_event
    )
