"""Secrets referenced by providers: a rotated API key reaches the gateway pods live.

An index maps (namespace, Secret name) to the providers that reference it, so only referenced
Secrets trigger anything: not service-account tokens, not Helm releases, not the gateway Secrets
the operator writes itself.
"""

from __future__ import annotations

from typing import Any

import kopf

from asbru_operator.context import context_of
from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.members import refresh_namespace, spec_fingerprint
from asbru_operator.reconcile import referenced_secrets

INDEX = "asbru_secret_refs"


def asbru_secret_refs(*, namespace: str | None, name: str, body: Any, **_: Any) -> dict[tuple[str, str], str]:
    """Index: (namespace, Secret name) -> name of a provider referencing it."""
    return {(str(namespace), secret): name for secret in referenced_secrets([body])}


def is_referenced(*, namespace: str | None, name: str, **kwargs: Any) -> bool:
    """Only Secrets some LLMProvider references (kopf passes the index by its name)."""
    refs: kopf.Index[Any, Any] = kwargs[INDEX]
    return (str(namespace), name) in refs


async def on_secret_event(*, memo: Any, event: Any, namespace: str | None, name: str, **_: Any) -> None:
    """Re-render this namespace's gateways when a referenced Secret's data changed or it went away."""
    ctx, namespace = context_of(memo), str(namespace)
    gone = event.get("type") == "DELETED"
    fingerprint = None if gone else spec_fingerprint(event.get("object") or {}, fields=("data",))
    if ctx.changed("secrets", namespace, name, fingerprint) or gone:
        await refresh_namespace(ctx, namespace)


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.index(GROUP, VERSION, "llmproviders", registry=registry, id=INDEX)(asbru_secret_refs)
    kopf.on.event("v1", "secrets", registry=registry, when=is_referenced, id="secret-event")(on_secret_event)
