"""One gateway's reconciliation: fetch its sources, render, apply, report conditions.

Called by the gateway's own handlers, by events of the resources it consumes (providers, routes,
plugins, referenced Secrets) and by the probe timer. Idempotent: it always renders from fresh
state and writes status only when something changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asbru_operator import mcp_status, probe
from asbru_operator.context import OperatorContext
from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.kubeapi import GATEWAYS, MCP_SERVERS, PLUGINS, PODS, PROVIDERS, ROUTES, SECRETS, KubeApi
from asbru_operator.render import selectors, status
from asbru_operator.render.config import (
    RenderError,
    Sources,
    UnresolvedRefsError,
    decode_secret,
    parse_spec,
    render_config,
)
from asbru_operator.render.mcp import referenced_secret_names
from asbru_operator.render.names import GatewayRef
from asbru_operator.render.objects import build_config_pair, build_infrastructure

Obj = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a reconciliation achieved; ``retry`` says why the handler should try again, if it should."""

    revision: str | None
    retry: str | None = None


def referenced_secrets(providers: Sequence[Mapping[str, Any]]) -> set[str]:
    """Secret names the providers' keys point at (read leniently: invalid specs are reported elsewhere)."""
    names: set[str] = set()
    for body in providers:
        for key in (body.get("spec") or {}).get("keys") or []:
            name = (key.get("secretKeyRef") or {}).get("name") if isinstance(key, dict) else None
            if isinstance(name, str) and name:
                names.add(name)
    return names


async def fetch_secrets(api: KubeApi, namespace: str, names: set[str]) -> dict[str, dict[str, str]]:
    """The named Secrets' decoded data; absent ones are simply not in the result."""
    ordered = sorted(names)
    bodies = await asyncio.gather(*(api.get(SECRETS, namespace, name) for name in ordered))
    return {name: decode_secret(body) for name, body in zip(ordered, bodies, strict=True) if body is not None}


async def fetch_sources(api: KubeApi, gateway: Obj) -> Sources:
    """Everything a gateway renders from, read concurrently: this is on the change-to-serving path."""
    namespace = gateway["metadata"]["namespace"]
    providers, routes, plugins, mcp_servers = await asyncio.gather(
        api.list(PROVIDERS, namespace),
        api.list(ROUTES, namespace),
        api.list(PLUGINS, namespace),
        api.list(MCP_SERVERS, namespace),
    )
    names = referenced_secrets(providers) | referenced_secret_names(mcp_servers, gateway)
    return Sources(
        gateway=gateway,
        providers=providers,
        routes=routes,
        plugins=plugins,
        secrets=await fetch_secrets(api, namespace, names),
        mcp_servers=mcp_servers,
    )


async def reconcile_gateway(ctx: OperatorContext, namespace: str, name: str) -> Outcome:
    """Render and apply one gateway under its lock; report Accepted/ResolvedRefs (and Ready)."""
    async with ctx.lock(namespace, name):
        body = await ctx.api.get(GATEWAYS, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome(revision=None)
        checks, revision, retry = await _render_and_apply(ctx, body)
        old = body.get("status") or {}
        if revision is not None and revision != old.get("revision"):
            desired = parse_spec(LLMGatewaySpec, body).replicas
            checks[status.PROGRAMMED] = status.Check(
                None, "Pending", f"0 of {desired} pods run revision {revision}"
            )
        else:
            checks[status.PROGRAMMED] = _check_from(old, status.PROGRAMMED)
        extra = {"revision": revision} if revision is not None else {}
        await _write_status(ctx.api, body, checks, extra)
        return Outcome(revision=revision, retry=retry)


async def _render_and_apply(
    ctx: OperatorContext, body: Obj
) -> tuple[dict[str, status.Check], str | None, str | None]:
    ref = GatewayRef.of(body)
    try:
        spec = parse_spec(LLMGatewaySpec, body)
        rendered = render_config(await fetch_sources(ctx.api, body))
    except RenderError as error:
        checks = {
            status.ACCEPTED: status.Check(False, "Invalid", str(error)),
            status.RESOLVED_REFS: status.Check(None, "Pending", "not checked: the config is invalid"),
        }
        return checks, None, str(error)
    except UnresolvedRefsError as error:
        reason = "SecretNotFound" if any(not m.secret_exists for m in error.missing) else "KeyNotFound"
        checks = {
            status.ACCEPTED: status.Check(True, "Accepted", "the config is valid"),
            status.RESOLVED_REFS: status.Check(False, reason, str(error)),
        }
        return checks, None, str(error)
    # The Secret, then the ConfigMap (pods wait until both carry the same revision): that pair is
    # what pods serve from, so it goes first; the rest does not depend on each other.
    for obj in build_config_pair(ref, rendered):
        await ctx.api.apply(obj)
    infrastructure = build_infrastructure(ref, spec, default_image=ctx.default_image)
    await asyncio.gather(*(ctx.api.apply(obj) for obj in infrastructure))
    checks = {
        status.ACCEPTED: status.Check(True, "Accepted", "the config is valid"),
        status.RESOLVED_REFS: status.Check(True, "ResolvedRefs", "all referenced Secrets and keys exist"),
    }
    return checks, rendered.served_revision, None


async def probe_gateway(ctx: OperatorContext, namespace: str, name: str) -> None:
    """Count the pods serving the rendered revision and report Programmed ("N of M pods ...")."""
    body = await ctx.api.get(GATEWAYS, namespace, name)
    revision = ((body or {}).get("status") or {}).get("revision")
    if body is None or not revision:
        return
    ref = GatewayRef.of(body)
    pods = [
        pod
        for pod in await ctx.api.list(PODS, namespace, selectors.selector_string(ref.selector_labels))
        if all(selectors.labels_of(pod).get(k) == v for k, v in ref.selector_labels.items())
    ]
    served, _ = await asyncio.gather(
        probe.served_revisions(ctx.probe_session(), pods, ctx.pod_url, ctx.probe_timeout_s),
        mcp_status.report(ctx, namespace, pods),
    )
    async with ctx.lock(namespace, name):
        body = await ctx.api.get(GATEWAYS, namespace, name)
        old = ((body or {}).get("status")) or {}
        if body is None or old.get("revision") != revision:
            return  # re-rendered meanwhile: the next tick probes for the new revision
        desired = parse_spec(LLMGatewaySpec, body).replicas
        current, programmed = status.programmed_check(revision=revision, desired=desired, served=served)
        checks = {kind: _check_from(old, kind) for kind in (status.ACCEPTED, status.RESOLVED_REFS)}
        checks[status.PROGRAMMED] = programmed
        extra = {
            "programmed": f"{current}/{desired}",
            "replicas": sum(1 for pod in pods if probe.is_running(pod)),
            "selector": selectors.selector_string(ref.selector_labels),
        }
        await _write_status(ctx.api, body, checks, extra)


def _check_from(old_status: Mapping[str, Any], kind: str) -> status.Check:
    for condition in old_status.get("conditions") or []:
        if condition.get("type") == kind:
            value = {"True": True, "False": False}.get(str(condition.get("status")))
            return status.Check(
                value, str(condition.get("reason") or "Unknown"), str(condition.get("message") or "")
            )
    return status.Check(None, "Pending", "not observed yet")


async def _write_status(
    api: KubeApi, body: Obj, checks: dict[str, status.Check], extra: Mapping[str, Any]
) -> None:
    old = body.get("status") or {}
    generation = body["metadata"].get("generation")
    conditions = status.conditions_for(
        checks, generation=generation, previous=old.get("conditions") or [], now=status.timestamp()
    )
    desired: dict[str, Any] = {"conditions": conditions, **extra}
    if generation is not None:
        desired["observedGeneration"] = generation
    if status.status_changed(old, desired):
        meta = body["metadata"]
        await api.patch_status(GATEWAYS, meta["namespace"], meta["name"], desired)
