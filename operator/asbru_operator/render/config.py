"""Custom resources -> ``GatewayConfig`` (the data plane's contract) + the credentials it references.

Keys become ``secret:<provider>.<key>`` references; their values go to the gateway's own Secret,
never into the config, so the ConfigMap can be read, diffed and hashed without leaking anything.
Everything is sorted, so equal inputs give equal bytes and equal revisions.

What is valid is rendered; a provider, route or plugin with a problem (``render.checks``) is left
out and listed in ``RenderedConfig.left_out``, so one broken resource never freezes the updates of
the others. Only an invalid gateway spec fails the whole render (``RenderError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from asbru_gateway.config.compat import downgraded
from asbru_gateway.config.governance import GovernanceConfig
from asbru_gateway.config.loader import format_validation_error
from asbru_gateway.config.mcp import McpConfig
from asbru_gateway.config.model import (
    SCHEMA_MINOR,
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
from asbru_operator.crd_models.route import LLMRouteSpec, served_model
from asbru_operator.render import selectors
from asbru_operator.render.checks import (
    GatewayRefsError,
    Problem,
    RenderError,
    name_of,
    parse_spec,
    plugin_problems,
    provider_problems,
    spec_of,
)
from asbru_operator.render.governance import render_governance
from asbru_operator.render.mcp import McpRenderError, McpSources, render_mcp
from asbru_operator.render.refs import MissingRef

__all__ = [
    "GatewayRefsError",
    "Problem",
    "RenderError",
    "RenderedConfig",
    "Sources",
    "mcp_server_problems",
    "parse_spec",
    "render_config",
]

Body = Mapping[str, Any]

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


@dataclass(frozen=True)
class Sources:
    """Everything one gateway's config is rendered from, already fetched (secrets base64-decoded)."""

    gateway: Body
    providers: Sequence[Body] = ()
    routes: Sequence[Body] = ()
    plugins: Sequence[Body] = ()
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    virtual_keys: Sequence[Body] = ()
    teams: Sequence[Body] = ()
    mcp_servers: Sequence[Body] = ()


@dataclass(frozen=True)
class RenderedConfig:
    """The contract plus the credentials its ``secret:`` references resolve to."""

    config: GatewayConfig
    secret_data: Mapping[str, str]
    left_out: tuple[Problem, ...] = ()
    """Selected resources not in ``config`` (or routes serving only some targets), and why."""

    @property
    def served_revision(self) -> str:
        """What every up-to-date gateway pod reports on /readyz (config and credentials)."""
        return served_revision(self.config.revision, self.secret_data)


def render_config(sources: Sources, *, schema_minor: int = SCHEMA_MINOR) -> RenderedConfig:
    """Render one gateway's config from what is valid; raises ``RenderError`` only for its own spec.

    ``schema_minor``: the oldest config schema minor the gateway's pods read; fields newer than it
    are left out (``compat.downgraded``), so old pods read the config strictly during an upgrade.
    """
    spec = parse_spec(LLMGatewaySpec, sources.gateway)
    gateway_labels = selectors.labels_of(sources.gateway)
    left_out: list[Problem] = []
    secret_data: dict[str, str] = {}
    providers = []
    for body in _selected(sources.providers, spec.provider_selector):
        provider = _provider(body, spec, sources.secrets, left_out)
        if provider is not None:
            providers.append(provider[0])
            secret_data.update(provider[1])
    routes = _routes(_selected(sources.routes, spec.route_selector), {p.name for p in providers}, left_out)
    plugins = _plugins(_selected(sources.plugins, spec.plugin_selector), gateway_labels, left_out)
    mcp = _mcp(sources, spec, gateway_labels, secret_data, left_out)
    governance = _governance(sources, spec, secret_data, left_out)
    server = {"drain_timeout_s": float(spec.drain_timeout_seconds)}
    if spec.max_body_bytes is not None:
        server["max_body_bytes"] = spec.max_body_bytes
    try:
        config = GatewayConfig(
            schemaVersion=SCHEMA_VERSION,
            schemaMinor=min(schema_minor, SCHEMA_MINOR),
            server=ServerConfig.model_validate(server),
            providers=tuple(providers),
            routes=tuple(routes),
            plugins=tuple(plugins),
            mcp=mcp,
            governance=governance,
        )
        config = downgraded(config, config.schema_minor)
    except ValidationError as error:
        message = format_validation_error(error)
        raise RenderError(f"the selected resources do not form a valid config: {message}") from None
    return RenderedConfig(
        config=config, secret_data=dict(sorted(secret_data.items())), left_out=tuple(left_out)
    )


def _governance(
    sources: Sources, spec: LLMGatewaySpec, secret_data: dict[str, str], left_out: list[Problem]
) -> GovernanceConfig | None:
    """The ``governance`` section; a key or team with a problem is left out (and says why).

    A key left out is refused by the gateway (401), so leaving out fails closed. Only the gateway's
    own governance spec fails the whole render: invalid (``RenderError``) or its Redis password's
    Secret missing (``GatewayRefsError``: serving without the shared counters would not be safe).
    """
    rendered = render_governance(sources.gateway, spec, sources.virtual_keys, sources.teams, sources.secrets)
    left_out.extend(rendered.left_out)
    secret_data.update(rendered.secret_data)
    return rendered.config


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
    body: Body, gateway: LLMGatewaySpec, secrets: Mapping[str, Mapping[str, str]], left_out: list[Problem]
) -> tuple[ProviderConfig, dict[str, str]] | None:
    """The provider's contract and its credentials, or None (and why, in ``left_out``)."""
    name = name_of(body)
    spec, problems = spec_of(LLMProviderSpec, "LLMProvider", body)
    if spec is not None:
        problems = provider_problems(body, spec, secrets)
    if spec is None or problems:
        left_out.extend(problems)
        return None
    keys, secret_data = [], {}
    for key in sorted(spec.keys, key=lambda k: k.name):
        ref, data_key = key.secret_key_ref, f"{name}.{key.name}"
        secret_data[data_key] = secrets[ref.name][ref.key].strip()
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
        config = ProviderConfig(
            name=name,
            type=spec.type,
            base_url=_base_url(spec, str(body["metadata"].get("namespace", ""))),
            # A serviceRef is an in-cluster address on purpose; a baseURL must opt in.
            allow_private_network=spec.allow_private_network or spec.service_ref is not None,
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
        left_out.append(Problem("LLMProvider", name, "Invalid", format_validation_error(error)))
        return None
    return config, secret_data


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


def _routes(bodies: Sequence[Body], served: set[str], left_out: list[Problem]) -> list[RouteConfig]:
    """Routes by name; targets on a provider not served are dropped, a route without any left out,
    and of two routes claiming one model the second (by object name) is left out."""
    routes: dict[str, tuple[str, RouteConfig]] = {}
    for body in bodies:
        name = name_of(body)
        spec, problems = spec_of(LLMRouteSpec, "LLMRoute", body)
        if spec is None:
            left_out.extend(problems)
            continue
        model = served_model(body)
        if model in routes:
            message = f"model {model!r} is already served by LLMRoute {routes[model][0]!r}"
            left_out.append(Problem("LLMRoute", name, "Conflicted", message))
            continue
        route = _route(name, model, spec, served, left_out)
        if route is not None:
            routes[model] = (name, route)
    return [route for _, (_, route) in sorted(routes.items())]


def _route(
    name: str, model: str, spec: LLMRouteSpec, served: set[str], left_out: list[Problem]
) -> RouteConfig | None:
    unserved = sorted({t.provider for t in spec.targets} - served)
    targets = sorted(
        (t for t in spec.targets if t.provider in served),
        key=lambda t: (t.priority, t.provider, t.model, t.weight),
    )
    if unserved:
        names = ", ".join(repr(provider) for provider in unserved)
        verdict = "serving the other targets" if targets else "no target left"
        message = f"LLMProvider {names} not served by this gateway ({verdict})"
        left_out.append(Problem("LLMRoute", name, "ProviderNotServed", message, unresolved=True))
    if not targets:
        return None
    extra: dict[str, Any] = {}
    if spec.fallback_on is not None:
        extra["fallback_on"] = tuple(sorted(set(spec.fallback_on)))
    try:
        return RouteConfig(
            name=model,
            targets=tuple(
                RouteTarget(provider=t.provider, model=t.model, weight=t.weight, priority=t.priority)
                for t in targets
            ),
            **extra,
        )
    except ValidationError as error:
        left_out.append(Problem("LLMRoute", name, "Invalid", format_validation_error(error)))
        return None


def _plugins(
    bodies: Sequence[Body], gateway_labels: Mapping[str, str], left_out: list[Problem]
) -> list[PluginConfig]:
    """Plugins that attach to this gateway and whose settings the gateway's plugin accepts."""
    plugins = []
    for body in bodies:
        spec, problems = spec_of(LLMPluginSpec, "LLMPlugin", body)
        if spec is not None:
            if not selectors.matches(spec.gateway_selector, gateway_labels):
                continue
            problems = plugin_problems(body, spec)
        if problems:
            left_out.extend(problems)
        elif spec is not None:
            plugins.append(_plugin(body, spec))
    return plugins


def _mcp(
    sources: Sources,
    spec: LLMGatewaySpec,
    gateway_labels: Mapping[str, str],
    secret_data: dict[str, str],
    left_out: list[Problem],
) -> McpConfig | None:
    """The ``mcp`` section from the selected LLMMCPServers that render on their own.

    A server whose spec is invalid or whose Secret is missing is left out (and says so on its own
    CR), like a provider: the others keep updating. A missing Secret of the gateway's own ``/mcp``
    token leaves MCP out of this gateway until it exists (``ResolvedRefs`` names it).
    """
    good: list[Body] = []
    # Each server is tried on its own first, without the gateway's own MCP settings (its bundles
    # name several servers), so one broken server is found and left out, not the whole section.
    alone = {
        **sources.gateway,
        "spec": {k: v for k, v in (sources.gateway.get("spec") or {}).items() if k != "mcp"},
    }
    for body in _selected(sources.mcp_servers, spec.mcp_selector):
        name = name_of(body)
        try:
            server_spec = parse_spec(LLMMCPServerSpec, body)
        except RenderError as error:
            left_out.append(Problem("LLMMCPServer", name, "Invalid", str(error)))
            continue
        if not selectors.matches(server_spec.gateway_selector, gateway_labels):
            continue
        problems = _server_problems(alone, body, sources.secrets)
        left_out.extend(problems)
        if not problems:
            good.append(body)
    missing: list[MissingRef] = []
    try:
        rendered = render_mcp(McpSources(sources.gateway, good, sources.secrets), secret_data, missing)
    except McpRenderError as error:
        left_out.append(Problem("LLMGateway", name_of(sources.gateway), "Invalid", str(error)))
        return None
    if missing:
        left_out.extend(_missing_problem(ref) for ref in missing)
        return None
    return rendered


def mcp_server_problems(body: Body, secrets: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """Why an LLMMCPServer is left out of every gateway's config (none: it renders), for its own
    status: an invalid spec, a missing Secret or key. The same checks the render makes."""
    try:
        parse_spec(LLMMCPServerSpec, body)
    except RenderError as error:
        return [Problem("LLMMCPServer", name_of(body), "Invalid", str(error))]
    namespace = (body.get("metadata") or {}).get("namespace")
    gateway = {"metadata": {"name": "status", "namespace": namespace}, "spec": {}}
    return _server_problems(gateway, body, secrets)


def _server_problems(gateway: Body, body: Body, secrets: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """One server rendered on its own (``gateway`` without MCP settings): what keeps it out."""
    missing: list[MissingRef] = []
    try:
        render_mcp(McpSources(gateway, [body], secrets), {}, missing)
    except McpRenderError as error:
        return [Problem("LLMMCPServer", name_of(body), "Invalid", str(error))]
    return [_missing_problem(ref) for ref in missing if ref.kind == "LLMMCPServer"]


def _missing_problem(ref: MissingRef) -> Problem:
    reason = "KeyNotFound" if ref.secret_exists else "SecretNotFound"
    return Problem(ref.kind, ref.provider, reason, ref.describe(), unresolved=True)


def _plugin(body: Body, spec: LLMPluginSpec) -> PluginConfig:
    return PluginConfig(
        name=name_of(body),
        type=str(spec.type),
        order=spec.order,
        enabled=spec.enabled,
        settings=dict(spec.settings or {}),
    )
