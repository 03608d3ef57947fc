"""Secrets the gateway config is rendered from: a rotated value reaches the gateway pods live.

Indexes map (namespace, Secret name) to what references it: providers (API keys), MCP servers
(secret headers and environment), and gateways themselves (the ``/mcp`` token, the governance
Redis password). Only referenced Secrets trigger anything: not service-account tokens, not Helm
releases, not the gateway Secrets the operator writes itself. Virtual keys' Secrets have their
own index (``handlers.virtual_key``) and the same handler.

Without these, a rotated Secret reached the pods only with the next periodic re-render (up to
5 minutes): long enough for a rotated Redis password to lock every gateway out of its counters.
"""

from __future__ import annotations

from typing import Any

import kopf

from asbru_operator.context import context_of
from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.members import refresh_namespace, spec_fingerprint
from asbru_operator.reconcile import referenced_secrets
from asbru_operator.render.governance import redis_password_secret
from asbru_operator.render.mcp import referenced_secret_names

INDEX = "asbru_secret_refs"
MCP_INDEX = "asbru_mcp_secret_refs"
GATEWAY_INDEX = "asbru_gateway_secret_refs"


def asbru_secret_refs(*, namespace: str | None, name: str, body: Any, **_: Any) -> dict[tuple[str, str], str]:
    """Index: (namespace, Secret name) -> name of a provider referencing it."""
    return {(str(namespace), secret): name for secret in referenced_secrets([body])}


def mcp_secret_refs(*, namespace: str | None, name: str, body: Any, **_: Any) -> dict[tuple[str, str], str]:
    """Index: (namespace, Secret name) -> name of an MCP server whose headers or environment read it."""
    return {(str(namespace), secret): name for secret in referenced_secret_names([body], {})}


def gateway_secret_refs(
    *, namespace: str | None, name: str, body: Any, **_: Any
) -> dict[tuple[str, str], str]:
    """Index: (namespace, Secret name) -> name of a gateway whose /mcp token or Redis password it holds."""
    names = referenced_secret_names([], body)
    redis = redis_password_secret(body)
    if redis is not None:
        names.add(redis)
    return {(str(namespace), secret): name for secret in names}


def is_referenced(*, namespace: str | None, name: str, **kwargs: Any) -> bool:
    """Only Secrets some provider, MCP server or gateway references (kopf passes indexes by name)."""
    key = (str(namespace), name)
    return any(key in kwargs[index] for index in (INDEX, MCP_INDEX, GATEWAY_INDEX))


async def on_secret_event(*, memo: Any, event: Any, namespace: str | None, name: str, **_: Any) -> None:
    """Re-render this namespace's gateways when a referenced Secret's data changed or it went away."""
    ctx, namespace = context_of(memo), str(namespace)
    gone = event.get("type") == "DELETED"
    fingerprint = None if gone else spec_fingerprint(event.get("object") or {}, fields=("data",))
    if ctx.changed("secrets", namespace, name, fingerprint) or gone:
        await refresh_namespace(ctx, namespace)


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.index(GROUP, VERSION, "llmproviders", registry=registry, id=INDEX)(asbru_secret_refs)
    kopf.index(GROUP, VERSION, "llmmcpservers", registry=registry, id=MCP_INDEX)(mcp_secret_refs)
    kopf.index(GROUP, VERSION, "llmgateways", registry=registry, id=GATEWAY_INDEX)(gateway_secret_refs)
    kopf.on.event("v1", "secrets", registry=registry, when=is_referenced, id="secret-event")(on_secret_event)
