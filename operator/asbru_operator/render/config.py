"""Custom resources -> ``GatewayConfig`` (the data plane's contract) + the credentials it references.

Keys become ``secret:<provider>.<key>`` references; their values go to the gateway's own Secret,
never into the config, so the ConfigMap can be read, diffed and hashed without leaking anything.
Everything is sorted, so equal inputs give equal bytes and equal revisions.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from asbru_gateway.config.mcp import McpConfig
from asbru_gateway.config.model import (
    SCHEMA_VERSION,
    GatewayConfig,
    KeyConfig,
    NetworkConfig,
    PluginConfig,
    PoolConfig,
    ProviderConfig,
    RouteConfig,
    RouteTarget,
    ServerConfig,
)
from asbru_gateway.config.secrets import served_revision
from asbru_operator.crd_models.common import LabelSelector
from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.crd_models.mcp_server import LLMMCPServerSpec
from asbru_operator.crd_models.plugin import LLMPluginSpec
from asbru_operator.crd_models.provider import LLMProviderSpec, NetworkSpec, PoolSpec
from asbru_operator.crd_models.route import LLMRouteSpec
from asbru_operator.render import selectors
from asbru_operator.render.mcp import McpRenderError, McpSources, render_mcp
from asbru_operator.render.refs import MissingRef

Body = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)

_NETWORK_FIELDS = {
    "connect_timeout_seconds": "connect_timeout_s",
    "request_timeout_seconds": "request_timeout_s",
    "stream_idle_timeout_seconds": "stream_idle_timeout_s",
    "max_retries": "max_retries",
    "backoff_initial_seconds": "backoff_initial_s",
    "backoff_max_seconds": "backoff_max_s",
    "retry_after_max_seconds": "retry_after_max_s",
    "headers": "headers",
}
_POOL_FIELDS = {
    "concurrency": "concurrency",
    "queue_size": "queue_size",
    "overflow": "overflow",
    "queue_timeout_seconds": "queue_timeout_s",
}


class RenderError(ValueError):
    """The resources are invalid together (bad spec, unknown provider, duplicate route): not Accepted."""


class UnresolvedRefsError(Exception):
    """Some referenced Secrets or keys are missing: ResolvedRefs=False, retry later."""

    def __init__(self, missing: Sequence[MissingRef]) -> None:
        self.missing = tuple(missing)
        super().__init__("; ".join(ref.describe() for ref in self.missing))


@dataclass(frozen=True)
class Sources:
    """Everything one gateway's config is rendered from, already fetched (secrets base64-decoded)."""

    gateway: Body
    providers: Sequence[Body] = ()
    routes: Sequence[Body] = ()
    plugins: Sequence[Body] = ()
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    mcp_servers: Sequence[Body] = ()


@dataclass(frozen=True)
class RenderedConfig:
    """The contract plus the credentials its ``secret:`` references resolve to."""

    config: GatewayConfig
    secret_data: Mapping[str, str]

    @property
    def served_revision(self) -> str:
        """What every up-to-date gateway pod reports on /readyz (config and credentials)."""
        return served_revision(self.config.revision, self.secret_data)


def decode_secret(body: Body) -> dict[str, str]:
    """A Secret's data, base64-decoded; values that are not UTF-8 text are left out (as missing)."""
    decoded: dict[str, str] = {}
    for key, value in (body.get("data") or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return decoded


def parse_spec(model: type[M], body: Body) -> M:
    """A resource's spec as a model; an invalid one is a ``RenderError`` that names the object."""
    meta = body.get("metadata", {})
    try:
        return model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise RenderError(f"{body.get('kind', 'object')} {meta.get('name')!r}: {error}") from None


def render_config(sources: Sources) -> RenderedConfig:
    """Render one gateway's config; raises ``RenderError`` or ``UnresolvedRefsError``."""
    spec = parse_spec(LLMGatewaySpec, sources.gateway)
    gateway_labels = selectors.labels_of(sources.gateway)
    providers = _selected(sources.providers, spec.provider_selector)
    routes = _selected(sources.routes, spec.route_selector)
    plugins = [
        body
        for body in _selected(sources.plugins, spec.plugin_selector)
        if selectors.matches(parse_spec(LLMPluginSpec, body).gateway_selector, gateway_labels)
    ]
    secret_data: dict[str, str] = {}
    missing: list[MissingRef] = []
    provider_configs = [_provider(body, spec, sources.secrets, secret_data, missing) for body in providers]
    mcp = _mcp(sources, spec, gateway_labels, secret_data, missing)
    if missing:
        raise UnresolvedRefsError(missing)
    server = {"drain_timeout_s": float(spec.drain_timeout_seconds)}
    if spec.max_body_bytes is not None:
        server["max_body_bytes"] = spec.max_body_bytes
    try:
        config = GatewayConfig(
            schemaVersion=SCHEMA_VERSION,
            server=ServerConfig.model_validate(server),
            providers=tuple(provider_configs),
            routes=tuple(sorted((_route(body) for body in routes), key=lambda r: r.name)),
            plugins=tuple(_plugin(body) for body in plugins),
            mcp=mcp,
        )
    except ValidationError as error:
        raise RenderError(f"the selected resources do not form a valid config: {error}") from None
    return RenderedConfig(config=config, secret_data=dict(sorted(secret_data.items())))


def _mcp(
    sources: Sources,
    spec: LLMGatewaySpec,
    gateway_labels: Mapping[str, str],
    secret_data: dict[str, str],
    missing: list[Any],
) -> McpConfig | None:
    servers = [
        body
        for body in _selected(sources.mcp_servers, spec.mcp_selector)
        if selectors.matches(parse_spec(LLMMCPServerSpec, body).gateway_selector, gateway_labels)
    ]
    try:
        return render_mcp(McpSources(sources.gateway, servers, sources.secrets), secret_data, missing)
    except McpRenderError as error:
        raise RenderError(str(error)) from None


def _selected(bodies: Sequence[Body], selector: LabelSelector | None) -> list[Body]:
    """Bodies matching ``selector``, not being deleted, sorted by name."""
    chosen = [
        body
        for body in bodies
        if not body.get("metadata", {}).get("deletionTimestamp")
        and selectors.matches(selector, selectors.labels_of(body))
    ]
    return sorted(chosen, key=lambda body: str(body["metadata"]["name"]))


def _provider(
    body: Body,
    gateway: LLMGatewaySpec,
    secrets: Mapping[str, Mapping[str, str]],
    secret_data: dict[str, str],
    missing: list[MissingRef],
) -> ProviderConfig:
    name = str(body["metadata"]["name"])
    spec = parse_spec(LLMProviderSpec, body)
    keys = []
    for key in sorted(spec.keys, key=lambda k: k.name):
        ref, data_key = key.secret_key_ref, f"{name}.{key.name}"
        value = secrets.get(ref.name, {}).get(ref.key, "").strip()
        if not value:
            missing.append(MissingRef(name, ref.name, ref.key, secret_exists=ref.name in secrets))
            continue
        secret_data[data_key] = value
        keys.append(
            KeyConfig(
                name=key.name,
                secret=f"secret:{data_key}",
                weight=key.weight,
                models=tuple(sorted(set(key.models))),
                exclude_models=tuple(sorted(set(key.exclude_models))),
            )
        )
    defaults = gateway.defaults
    try:
        return ProviderConfig(
            name=name,
            type=spec.type,
            base_url=_base_url(spec, str(body["metadata"].get("namespace", ""))),
            keys=tuple(keys),
            network=NetworkConfig(
                **_merged(_NETWORK_FIELDS, defaults.network if defaults else None, spec.network)
            ),
            pool=PoolConfig(**_merged(_POOL_FIELDS, defaults.pool if defaults else None, spec.pool)),
            api_version=spec.api_version,
            deployments=dict(sorted((spec.deployments or {}).items())),
            models=tuple(sorted(set(spec.models))),
            options=dict(spec.options or {}),
        )
    except ValidationError as error:
        raise RenderError(f"LLMProvider {name!r}: {error}") from None


def _base_url(spec: LLMProviderSpec, namespace: str) -> str | None:
    if spec.service_ref is None:
        return spec.base_url
    ref = spec.service_ref
    return f"{ref.scheme}://{ref.name}.{ref.namespace or namespace}.svc:{ref.port}{ref.path or ''}"


def _merged(
    fields: Mapping[str, str], default: NetworkSpec | PoolSpec | None, own: NetworkSpec | PoolSpec | None
) -> dict[str, Any]:
    """Contract kwargs: the provider's own value, else the gateway's default, else the contract's."""
    merged: dict[str, Any] = {}
    for layer in (default, own):
        for crd_field, contract_field in fields.items():
            value = getattr(layer, crd_field, None) if layer is not None else None
            if value is not None:
                merged[contract_field] = dict(sorted(value.items())) if isinstance(value, dict) else value
    return merged


def _route(body: Body) -> RouteConfig:
    spec = parse_spec(LLMRouteSpec, body)
    targets = sorted(spec.targets, key=lambda t: (t.priority, t.provider, t.model, t.weight))
    extra: dict[str, Any] = {}
    if spec.fallback_on is not None:
        extra["fallback_on"] = tuple(sorted(set(spec.fallback_on)))
    try:
        return RouteConfig(
            name=spec.model or str(body["metadata"]["name"]),
            targets=tuple(
                RouteTarget(provider=t.provider, model=t.model, weight=t.weight, priority=t.priority)
                for t in targets
            ),
            **extra,
        )
    except ValidationError as error:
        raise RenderError(f"LLMRoute {body['metadata']['name']!r}: {error}") from None


def _plugin(body: Body) -> PluginConfig:
    spec = parse_spec(LLMPluginSpec, body)
    return PluginConfig(
        name=str(body["metadata"]["name"]),
        type=str(spec.type),
        order=spec.order,
        enabled=spec.enabled,
        settings=dict(spec.settings or {}),
    )
