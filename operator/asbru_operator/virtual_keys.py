"""Virtual keys and teams against the API: generated key Secrets, the admin token, usage in status.

- A key without ``secretRef`` gets an owned Secret ``<key>-virtual-key`` with a generated value
  (256 random bits), created once and never rewritten: the user reads it and hands it out.
- Each gateway with governance gets a management-API token in its own Secret, generated once.
- Every ``usage_interval_s`` the gateway's daemon asks one of its running pods' management API for
  every key's and team's limits and usage (one call each; with Redis any pod answers for all) and
  writes ``spend``/``budget``/``remaining`` and the conditions into their status.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from asbru_operator import probe
from asbru_operator.context import OperatorContext
from asbru_operator.crd_models.common import API_VERSION
from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.kubeapi import GATEWAYS, PODS, SECRETS, TEAMS, VIRTUAL_KEYS, ApiResource, KubeApi
from asbru_operator.render import selectors, status
from asbru_operator.render.checks import Problem, member_checks
from asbru_operator.render.config import RenderError, parse_spec
from asbru_operator.render.governance import (
    ADMIN_TOKEN,
    KEY_DATA,
    Body,
    key_problems,
    key_secret,
    owned_secret_name,
    selected_keys,
)
from asbru_operator.render.key_status import budget_check, key_checks, usage_columns
from asbru_operator.render.names import GatewayRef
from asbru_operator.secret_data import fetch_secrets

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
KEY_PREFIX = "sk-asbru-"
STAMP_EVERY_S = 20


def generated_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def ensure_key_secret(api: KubeApi, body: Mapping[str, Any]) -> str:
    """The name of the Secret holding the key's value; the owned one is created if missing."""
    meta = body["metadata"]
    ref = (body.get("spec") or {}).get("secretRef")
    if isinstance(ref, dict) and ref.get("name"):
        return str(ref["name"])
    name = owned_secret_name(str(meta["name"]))
    if await api.get(SECRETS, str(meta["namespace"]), name) is None:
        owner = {
            "apiVersion": API_VERSION,
            "kind": "LLMVirtualKey",
            "name": meta["name"],
            "uid": meta.get("uid", ""),
            "controller": True,
        }
        await api.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": {"app.kubernetes.io/part-of": "asbru", "asbru.dev/virtual-key": meta["name"]},
                    "ownerReferences": [owner],
                },
                "type": "Opaque",
                "data": {KEY_DATA: base64.b64encode(generated_key().encode()).decode()},
            }
        )
    return name


async def admin_token(api: KubeApi, ref: GatewayRef) -> str:
    """The gateway's management-API token: the one in its Secret, or a new one."""
    existing = await api.get(SECRETS, ref.namespace, ref.config_name)
    encoded = ((existing or {}).get("data") or {}).get(ADMIN_TOKEN)
    if encoded:
        return base64.b64decode(encoded).decode()
    return secrets.token_urlsafe(32)


async def key_problems_of(api: KubeApi, namespace: str, keys: Sequence[Body]) -> dict[str, list[Problem]]:
    """Why each key is left out of the gateways' config (the render's own checks), by key name."""
    teams = await api.list(TEAMS, namespace)
    secrets = await fetch_secrets(api, namespace, {key_secret(body).name for body in keys})
    return {str(body["metadata"]["name"]): key_problems(body, secrets, teams) for body in keys}


async def write_key_secret_name(api: KubeApi, body: Mapping[str, Any], secret_name: str) -> None:
    """The ``secretName`` column: where the key's value is (its conditions are the refresh's)."""
    meta = body["metadata"]
    if meta.get("deletionTimestamp") or (body.get("status") or {}).get("secretName") == secret_name:
        return
    await api.patch_status(VIRTUAL_KEYS, meta["namespace"], meta["name"], {"secretName": secret_name})


async def write_key_status(
    api: KubeApi,
    body: Mapping[str, Any],
    view: Mapping[str, Any] | None,
    *,
    problems: Sequence[Problem],
) -> None:
    """Conditions and columns of one key (``view``: what a gateway reported, None: not known yet).

    ``Accepted`` and ``ResolvedRefs`` say whether the gateways serve it at all (``problems``: a
    missing Secret or team, an invalid spec), as for providers and routes; ``Active`` whether it is
    enabled and unexpired; ``WithinBudget`` what the gateways last reported."""
    old = body.get("status") or {}
    checks = {
        **member_checks(problems, resolved="its Secret and team resolve"),
        **key_checks(body.get("spec") or {}, view),
    }
    if view is None:  # keep the last known budget state until a gateway reports again
        checks["WithinBudget"] = _carried(old, "WithinBudget", checks["WithinBudget"])
    desired: Obj = {**usage_columns(view)}
    if view is not None:
        desired["usageRefreshedAt"] = status.timestamp()
    await _write(api, VIRTUAL_KEYS, body, checks, desired)


async def write_team_status(api: KubeApi, body: Mapping[str, Any], view: Mapping[str, Any] | None) -> None:
    checks = {"WithinBudget": budget_check(view)}
    desired: Obj = {**usage_columns(view, own="team")}
    if view is not None:
        desired["usageRefreshedAt"] = status.timestamp()
    await _write(api, TEAMS, body, checks, desired)


async def _write(
    api: KubeApi, resource: ApiResource, body: Mapping[str, Any], checks: dict[str, status.Check], extra: Obj
) -> None:
    meta, old = body["metadata"], body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return
    generation = meta.get("generation")
    conditions = status.conditions_for(
        checks, generation=generation, previous=old.get("conditions") or [], now=status.timestamp()
    )
    desired: Obj = {"conditions": conditions, **extra}
    if generation is not None:
        desired["observedGeneration"] = generation
    comparable = {k: v for k, v in desired.items() if k != "usageRefreshedAt"}
    if status.status_changed(old, comparable) or _stale(old, desired):
        await api.patch_status(resource, meta["namespace"], meta["name"], desired)


def _stale(old: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Refresh the timestamp when nothing else changed only every 20 s (fewer writes)."""
    new, before = desired.get("usageRefreshedAt"), old.get("usageRefreshedAt")
    if not new:
        return False
    if not before:
        return True
    return (_parsed(str(new)) - _parsed(str(before))).total_seconds() >= STAMP_EVERY_S


def _parsed(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _carried(old: Mapping[str, Any], kind: str, default: status.Check) -> status.Check:
    for condition in old.get("conditions") or []:
        if condition.get("type") == kind:
            value = {"True": True, "False": False}.get(str(condition.get("status")))
            return status.Check(value, str(condition.get("reason")), str(condition.get("message") or ""))
    return default


async def refresh_usage(ctx: OperatorContext, namespace: str, name: str) -> None:
    """Ask a running pod of the gateway for usage; write it into its keys' and teams' status."""
    gateway = await ctx.api.get(GATEWAYS, namespace, name)
    if gateway is None:
        return
    try:
        spec = parse_spec(LLMGatewaySpec, gateway)
    except RenderError:
        return
    if spec.governance is None:
        return
    ref = GatewayRef.of(gateway)
    views = await _fetch_views(ctx, ref)
    if views is None:
        return
    key_views, team_views = views
    keys = selected_keys(gateway, spec, await ctx.api.list(VIRTUAL_KEYS, namespace))
    problems = await key_problems_of(ctx.api, namespace, keys)
    for body in keys:
        key_name = str(body["metadata"]["name"])
        await write_key_status(ctx.api, body, key_views.get(key_name), problems=problems[key_name])
    used_teams = {str((body.get("spec") or {}).get("team")) for body in keys}
    for body in await ctx.api.list(TEAMS, namespace):
        if body["metadata"]["name"] in used_teams:
            await write_team_status(ctx.api, body, team_views.get(str(body["metadata"]["name"])))


async def _fetch_views(ctx: OperatorContext, ref: GatewayRef) -> tuple[dict[str, Any], dict[str, Any]] | None:
    secret = await ctx.api.get(SECRETS, ref.namespace, ref.config_name)
    encoded = ((secret or {}).get("data") or {}).get(ADMIN_TOKEN)
    if not encoded:
        return None
    headers = {"authorization": f"Bearer {base64.b64decode(encoded).decode()}"}
    pods = await ctx.api.list(PODS, ref.namespace, selectors.selector_string(ref.selector_labels))
    session = ctx.probe_session()
    for pod in pods:
        base = ctx.admin_url(pod) if probe.is_running(pod) else None
        if base is None:
            continue
        try:
            keys = await _get(session, f"{base}/v1/keys", headers, ctx.probe_timeout_s)
            teams = await _get(session, f"{base}/v1/teams", headers, ctx.probe_timeout_s)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, ValueError) as error:
            logger.debug("usage from pod %s failed: %s", pod["metadata"].get("name"), error)
            continue
        return {view["name"]: view for view in keys}, {view["name"]: view for view in teams}
    return None


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], timeout_s: float
) -> list[Any]:
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        answer = orjson.loads(await response.read())
    if not isinstance(answer, list):
        raise ValueError("not a list")
    return answer
