"""One gateway's reconciliation: fetch its sources, render, apply, report conditions.

Called by the gateway's own handlers, by events of the resources it consumes (providers, routes,
plugins, referenced Secrets) and by the probe loop. Idempotent: it always renders from fresh
state and writes status only when something changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from asbru_gateway.config.model import SCHEMA_MINOR
from asbru_operator import mcp_status, probe
from asbru_operator.context import OperatorContext
from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.kubeapi import (
    GATEWAYS,
    MCP_SERVERS,
    PLUGINS,
    PODS,
    PROVIDERS,
    ROUTES,
    TEAMS,
    VIRTUAL_KEYS,
    KubeApi,
    KubeApiError,
)
from asbru_operator.render import selectors, status
from asbru_operator.render.config import (
    GatewayRefsError,
    Problem,
    RenderError,
    Sources,
    parse_spec,
    render_config,
)
from asbru_operator.render.governance import ADMIN_TOKEN, governance_secrets
from asbru_operator.render.key_status import degraded_check
from asbru_operator.render.mcp import referenced_secret_names
from asbru_operator.render.names import GatewayRef
from asbru_operator.render.objects import build_config_pair, build_infrastructure
from asbru_operator.secret_data import fetch_secrets
from asbru_operator.virtual_keys import admin_token

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


async def fetch_sources(api: KubeApi, gateway: Obj) -> Sources:
    """Everything a gateway renders from, read concurrently: this is on the change-to-serving path."""
    namespace = gateway["metadata"]["namespace"]
    providers, routes, plugins, mcp_servers, keys, teams = await asyncio.gather(
        api.list(PROVIDERS, namespace),
        api.list(ROUTES, namespace),
        api.list(PLUGINS, namespace),
        api.list(MCP_SERVERS, namespace),
        api.list(VIRTUAL_KEYS, namespace),
        api.list(TEAMS, namespace),
    )
    names = (
        referenced_secrets(providers)
        | referenced_secret_names(mcp_servers, gateway)
        | governance_secrets(_gateway_spec(gateway), keys)
    )
    return Sources(
        gateway=gateway,
        providers=providers,
        routes=routes,
        plugins=plugins,
        secrets=await fetch_secrets(api, namespace, names),
        mcp_servers=mcp_servers,
        virtual_keys=keys,
        teams=teams,
    )


def _gateway_spec(gateway: Obj) -> LLMGatewaySpec:
    try:
        return parse_spec(LLMGatewaySpec, gateway)
    except RenderError:
        return LLMGatewaySpec.model_validate({})  # invalid: reported when rendering; nothing to read


async def reconcile_gateway(ctx: OperatorContext, namespace: str, name: str) -> Outcome:
    """Render and apply one gateway under its lock; report Accepted/ResolvedRefs (and Ready)."""
    async with ctx.lock(namespace, name):
        body = await ctx.api.get(GATEWAYS, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome(revision=None)
        checks, revision, retry = await _render_and_apply(ctx, body)
        if status.PROGRAMMED not in checks:  # else the writes failed, and Programmed says so
            checks[status.PROGRAMMED] = _programmed_after_render(body, revision)
        extra = {"revision": revision} if revision is not None else {}
        await _write_status(ctx.api, body, checks, extra)
        return Outcome(revision=revision, retry=retry)


def _programmed_after_render(body: Obj, revision: str | None) -> status.Check:
    """A new revision is Pending until the probe loop sees pods serve it; otherwise nothing changed."""
    old = body.get("status") or {}
    if revision is not None and revision != old.get("revision"):
        desired = parse_spec(LLMGatewaySpec, body).replicas
        return status.Check(None, "Pending", f"0 of {desired} pods run revision {revision}")
    return _check_from(old, status.PROGRAMMED)


async def _render_and_apply(
    ctx: OperatorContext, body: Obj
) -> tuple[dict[str, status.Check], str | None, str | None]:
    ref = GatewayRef.of(body)
    try:
        spec = parse_spec(LLMGatewaySpec, body)
        minor = schema_minor_for(body.get("status") or {})
        rendered = render_config(await fetch_sources(ctx.api, body), schema_minor=minor)
    except GatewayRefsError as error:  # nothing safe to serve without it: pods keep the last config
        checks = {
            status.ACCEPTED: status.Check(True, "Accepted", "the config is valid"),
            status.RESOLVED_REFS: status.Check(False, error.reason, str(error)),
        }
        return checks, None, str(error)
    except RenderError as error:
        checks = {
            status.ACCEPTED: status.Check(False, "Invalid", str(error)),
            status.RESOLVED_REFS: status.Check(None, "Pending", "not checked: the config is invalid"),
        }
        return checks, None, str(error)
    if rendered.config.governance is not None:  # the management API's token, generated once
        token = await admin_token(ctx.api, ref)
        rendered = replace(rendered, secret_data={**rendered.secret_data, ADMIN_TOKEN: token})
    checks = {
        status.ACCEPTED: status.Check(True, "Accepted", "the config is valid"),
        status.RESOLVED_REFS: _members_check(rendered.left_out),
    }
    if spec.governance is not None:
        checks[status.DEGRADED] = degraded_check(body.get("spec") or {}, rendered.config.schema_minor)
    # Waiting for a Secret is worth a retry (its watch usually comes first); an invalid resource
    # is fixed by an edit, whose event re-renders anyway.
    missing = [p.describe() for p in rendered.left_out if p.reason in {"SecretNotFound", "KeyNotFound"}]
    retry = "; ".join(missing) or None
    try:
        await _apply(
            ctx.api,
            build_config_pair(ref, rendered),
            build_infrastructure(ref, spec, default_image=ctx.default_image),
        )
    except KubeApiError as error:
        message = f"writing the gateway's objects failed, will retry: {error}"
        checks[status.PROGRAMMED] = status.Check(False, "ApplyFailed", message)
        return checks, None, message
    return checks, rendered.served_revision, retry


def _members_check(left_out: Sequence[Problem]) -> status.Check:
    """ResolvedRefs of a gateway: every selected provider, route, plugin, MCP server and virtual key
    made it into the config."""
    if not left_out:
        return status.Check(True, "ResolvedRefs", "every selected resource is served")
    unresolved = [problem for problem in left_out if problem.unresolved]
    reason = (unresolved or list(left_out))[0].reason
    problems = "; ".join(problem.describe() for problem in left_out)
    return status.Check(False, reason, f"left out of the config (the rest is served): {problems}")


async def _apply(api: KubeApi, config_pair: list[Obj], infrastructure: list[list[Obj]]) -> None:
    """The Secret, then the ConfigMap (pods wait until both carry the same revision): that pair is
    what pods serve from, so it goes first; then the rest, wave by wave (``DEPENDS_ON``)."""
    for obj in config_pair:
        await api.apply(obj)
    for wave in infrastructure:
        await asyncio.gather(*(api.apply(obj) for obj in wave))


async def probe_gateway(ctx: OperatorContext, namespace: str, name: str) -> None:
    """Ask the pods what they serve: report Programmed ("N of M pods ...", and which refuse the
    revision and why), and the oldest config schema they read, re-rendering when that changed."""
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
    reports, _ = await asyncio.gather(
        probe.pod_reports(ctx.probe_session(), pods, ctx.pod_url, ctx.probe_timeout_s),
        mcp_status.report(ctx, namespace, pods),
    )
    minors = [report.schema_minor for report in reports if report.schema_minor is not None]
    async with ctx.lock(namespace, name):
        body = await ctx.api.get(GATEWAYS, namespace, name)
        old = ((body or {}).get("status")) or {}
        if body is None or old.get("revision") != revision:
            return  # re-rendered meanwhile: the next tick probes for the new revision
        try:
            desired = parse_spec(LLMGatewaySpec, body).replicas
        except RenderError:
            return  # an invalid spec: its reconciliation says so (Accepted=False)
        current, programmed = status.programmed_check(revision=revision, desired=desired, reports=reports)
        checks = {kind: _check_from(old, kind) for kind in (status.ACCEPTED, status.RESOLVED_REFS)}
        if any(c.get("type") == status.DEGRADED for c in old.get("conditions") or []):
            checks[status.DEGRADED] = _check_from(old, status.DEGRADED)
        checks[status.PROGRAMMED] = programmed
        extra: dict[str, Any] = {
            "programmed": f"{current}/{desired}",
            "replicas": sum(1 for pod in pods if probe.is_running(pod)),
            "selector": selectors.selector_string(ref.selector_labels),
        }
        if minors:  # no answer: keep what the last pods said
            extra["schemaMinor"] = min(minors)
        await _write_status(ctx.api, body, checks, extra)
    if minors and schema_minor_for(old) != schema_minor_for(extra):
        await reconcile_gateway(ctx, namespace, name)


def schema_minor_for(gateway_status: Mapping[str, Any]) -> int:
    """The config schema minor to render: the operator's own, or the oldest the pods read if older."""
    reported = gateway_status.get("schemaMinor")
    return min(SCHEMA_MINOR, reported) if isinstance(reported, int) else SCHEMA_MINOR


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
