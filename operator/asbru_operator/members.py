"""The resources gateways consume (providers, routes, plugins): their own status, and fan-out.

A change to any of them, or to a Secret they reference, may change what every gateway in the
namespace renders; gateways are few per namespace, so the operator simply re-reconciles all of
them (each is a no-op when its render did not change).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from asbru_operator.context import OperatorContext
from asbru_operator.crd_models.plugin import LLMPluginSpec
from asbru_operator.crd_models.provider import LLMProviderSpec
from asbru_operator.crd_models.route import LLMRouteSpec, served_model
from asbru_operator.kubeapi import GATEWAYS, PLUGINS, PROVIDERS, ROUTES, ApiResource, KubeApi, KubeApiError
from asbru_operator.reconcile import fetch_secrets, reconcile_gateway, referenced_secrets
from asbru_operator.render import status
from asbru_operator.render.config import RenderError, parse_spec

logger = logging.getLogger(__name__)
Obj = dict[str, Any]


def provider_checks(
    body: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, status.Check]:
    """Accepted (the spec parses) and ResolvedRefs (every key's Secret and key exist)."""
    try:
        spec = parse_spec(LLMProviderSpec, body)
    except RenderError as error:
        return {status.ACCEPTED: status.Check(False, "Invalid", str(error))}
    missing = []
    for key in spec.keys:
        ref = key.secret_key_ref
        if ref.name not in secrets:
            missing.append(f"Secret {ref.name!r} not found (key {key.name!r})")
        elif not secrets[ref.name].get(ref.key, "").strip():
            missing.append(f"key {ref.key!r} not found in Secret {ref.name!r} (key {key.name!r})")
    accepted = status.Check(True, "Accepted", "the spec is valid")
    if missing:
        reason = "SecretNotFound" if any(m.startswith("Secret") for m in missing) else "KeyNotFound"
        return {
            status.ACCEPTED: accepted,
            status.RESOLVED_REFS: status.Check(False, reason, "; ".join(missing)),
        }
    return {
        status.ACCEPTED: accepted,
        status.RESOLVED_REFS: status.Check(True, "ResolvedRefs", "all keys resolved"),
    }


def route_checks(body: Mapping[str, Any], providers: set[str]) -> dict[str, status.Check]:
    """Accepted (the spec parses) and ResolvedRefs (every target's LLMProvider exists)."""
    try:
        spec = parse_spec(LLMRouteSpec, body)
    except RenderError as error:
        return {status.ACCEPTED: status.Check(False, "Invalid", str(error))}
    unknown = sorted({t.provider for t in spec.targets} - providers)
    accepted = status.Check(True, "Accepted", "the spec is valid")
    if unknown:
        message = "LLMProvider " + ", ".join(repr(name) for name in unknown) + " not found"
        return {
            status.ACCEPTED: accepted,
            status.RESOLVED_REFS: status.Check(False, "ProviderNotFound", message),
        }
    return {
        status.ACCEPTED: accepted,
        status.RESOLVED_REFS: status.Check(True, "ResolvedRefs", "all targets exist"),
    }


def plugin_checks(body: Mapping[str, Any]) -> dict[str, status.Check]:
    try:
        parse_spec(LLMPluginSpec, body)
    except RenderError as error:
        return {status.ACCEPTED: status.Check(False, "Invalid", str(error))}
    return {status.ACCEPTED: status.Check(True, "Accepted", "the spec is valid")}


async def refresh_namespace(ctx: OperatorContext, namespace: str) -> None:
    """Re-reconcile every gateway of the namespace, then update the consumed resources' statuses.

    Gateways first: their render is what pods serve, and a change should reach them in well under
    a second; the members' own status conditions can follow.
    """
    await ctx.coalesced(namespace, lambda: _refresh(ctx, namespace))


async def _refresh(ctx: OperatorContext, namespace: str) -> None:
    for gateway in await ctx.api.list(GATEWAYS, namespace):
        name = gateway["metadata"]["name"]
        try:
            await reconcile_gateway(ctx, namespace, name)
        except KubeApiError as error:  # the gateway's own handler retries; do not starve the others
            logger.warning("reconciling LLMGateway %s/%s failed: %s", namespace, name, error)
    await refresh_member_statuses(ctx.api, namespace)


async def refresh_member_statuses(api: KubeApi, namespace: str) -> None:
    providers = await api.list(PROVIDERS, namespace)
    secrets = await fetch_secrets(api, namespace, referenced_secrets(providers))
    names = {str(body["metadata"]["name"]) for body in providers}
    for body in providers:
        await _write(api, PROVIDERS, body, provider_checks(body, secrets))
    for body in await api.list(ROUTES, namespace):
        await _write(api, ROUTES, body, route_checks(body, names), {"model": served_model(body)})
    for body in await api.list(PLUGINS, namespace):
        await _write(api, PLUGINS, body, plugin_checks(body))


async def _write(
    api: KubeApi, resource: ApiResource, body: Obj, checks: dict[str, status.Check], extra: Obj | None = None
) -> None:
    meta, old = body["metadata"], body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return
    generation = meta.get("generation")
    desired: Obj = {
        "conditions": status.conditions_for(
            checks, generation=generation, previous=old.get("conditions") or [], now=status.timestamp()
        ),
        **(extra or {}),
    }
    if generation is not None:
        desired["observedGeneration"] = generation
    if status.status_changed(old, desired):
        await api.patch_status(resource, meta["namespace"], meta["name"], desired)


def spec_fingerprint(body: Mapping[str, Any], fields: Sequence[str] = ("spec",)) -> bytes:
    """What of an object matters to gateways: its spec (or data) and labels, not its status."""
    meta = body.get("metadata") or {}
    relevant = {name: body.get(name) for name in fields}
    relevant["labels"] = meta.get("labels") or {}
    return orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)
