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
from asbru_operator.kubeapi import (
    GATEWAYS,
    MCP_SERVERS,
    PLUGINS,
    PROVIDERS,
    ROUTES,
    VIRTUAL_KEYS,
    ApiResource,
    KubeApi,
    KubeApiError,
)
from asbru_operator.reconcile import reconcile_gateway, referenced_secrets
from asbru_operator.render import status
from asbru_operator.render.checks import (
    Problem,
    member_checks,
    name_of,
    plugin_problems,
    provider_problems,
    spec_of,
)
from asbru_operator.render.config import mcp_server_problems
from asbru_operator.render.mcp import referenced_secret_names
from asbru_operator.secret_data import fetch_secrets
from asbru_operator.virtual_keys import key_problems_of, write_key_status

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
Body = Mapping[str, Any]


def provider_problems_of(body: Body, secrets: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """Why an LLMProvider is not served: an invalid spec, an unknown type, a missing Secret or key.

    Its Accepted and ResolvedRefs come from these (``member_checks``), as do its routes'.
    """
    spec, problems = spec_of(LLMProviderSpec, "LLMProvider", body)
    return provider_problems(body, spec, secrets) if spec is not None else problems


def route_checks(
    body: Body, providers: Mapping[str, Sequence[Problem]], claimed_by: str | None = None
) -> dict[str, status.Check]:
    """Accepted (the spec parses, its model is its own) and ResolvedRefs (every target's
    LLMProvider exists and is valid).

    ``providers``: every LLMProvider of the namespace, with its own problems; ``claimed_by``: the
    LLMRoute that already serves this route's model name (the first by name), if another does.
    """
    spec, problems = spec_of(LLMRouteSpec, "LLMRoute", body)
    if spec is None:
        return member_checks(problems, resolved=None)
    name = name_of(body)
    if claimed_by is not None:
        message = f"model {served_model(body)!r} is already served by LLMRoute {claimed_by!r}"
        problems.append(Problem("LLMRoute", name, "Conflicted", message))
    for provider in sorted({t.provider for t in spec.targets}):
        if provider not in providers:
            message = f"LLMProvider {provider!r} not found"
            problems.append(Problem("LLMRoute", name, "ProviderNotFound", message, unresolved=True))
        elif providers[provider]:
            first = providers[provider][0]
            message = f"LLMProvider {provider!r} is not served: {first.message}"
            problems.append(Problem("LLMRoute", name, "ProviderNotServed", message, unresolved=True))
    return member_checks(problems, resolved="all targets exist")


def plugin_checks(body: Body) -> dict[str, status.Check]:
    """Accepted: a valid spec whose settings the gateway's plugin accepts."""
    spec, problems = spec_of(LLMPluginSpec, "LLMPlugin", body)
    if spec is not None:
        problems = plugin_problems(body, spec)
    return member_checks(problems, resolved=None)


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
    problems = {name_of(body): provider_problems_of(body, secrets) for body in providers}
    for body in providers:
        await _write(
            api, PROVIDERS, body, member_checks(problems[name_of(body)], resolved="all keys resolved")
        )
    owners: dict[str, str] = {}
    for body in sorted(await api.list(ROUTES, namespace), key=name_of):
        model = served_model(body)
        owner = owners.setdefault(model, name_of(body))
        claimed_by = owner if owner != name_of(body) else None
        await _write(api, ROUTES, body, route_checks(body, problems, claimed_by), {"model": model})
    for body in await api.list(PLUGINS, namespace):
        await _write(api, PLUGINS, body, plugin_checks(body))
    servers = await api.list(MCP_SERVERS, namespace)
    if servers:
        server_secrets = await fetch_secrets(api, namespace, referenced_secret_names(servers, {}))
        for body in servers:
            await _write_server_refs(api, body, mcp_server_problems(body, server_secrets))
    keys = await api.list(VIRTUAL_KEYS, namespace)
    key_problems = await key_problems_of(api, namespace, keys) if keys else {}
    for body in keys:  # usage columns are left as the last gateway report wrote them
        await write_key_status(api, body, None, problems=key_problems[name_of(body)])


async def _write_server_refs(api: KubeApi, body: Obj, problems: Sequence[Problem]) -> None:
    """An MCP server's Accepted/ResolvedRefs when it cannot be rendered. Its connection status is
    the gateway probe's (``mcp_status``, written from what the pods report): a server that renders
    is left to it, except to clear what this wrote before the problem was fixed."""
    if problems:
        await _write(api, MCP_SERVERS, body, member_checks(problems, resolved="its Secrets resolve"))
        return
    old = (body.get("status") or {}).get("conditions") or []
    if any(
        c.get("type") in (status.ACCEPTED, status.RESOLVED_REFS) and c.get("status") == "False" for c in old
    ):
        checks = member_checks([], resolved="its Secrets resolve")
        checks[CONNECTED] = status.Check(None, "Pending", "no gateway pod has reported it yet")
        await _write(api, MCP_SERVERS, body, checks)


CONNECTED = "Connected"


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
