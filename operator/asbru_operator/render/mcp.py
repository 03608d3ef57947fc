"""``LLMMCPServer`` resources (and ``LLMGateway.spec.mcp``) -> the config's ``mcp`` section.

Secret headers and environment variables become ``secret:mcp.<server>.<n>`` references, their values
go to the gateway's Secret (like provider keys). In-cluster Services become URLs. ``/mcp`` accepts
the gateway Service's own names as Host (plus loopback, for port-forwards, and what the gateway spec
adds). No ``LLMMCPServer`` selected and no ``spec.mcp``: no ``mcp`` section at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from asbru_gateway.config.mcp import McpConfig
from asbru_operator.crd_models.common import SecretKeySelector
from asbru_operator.crd_models.gateway import LLMGatewaySpec
from asbru_operator.crd_models.mcp_server import LLMMCPServerSpec, SecretEnv, SecretHeader
from asbru_operator.crd_models.provider import ServiceRef
from asbru_operator.render.refs import MissingRef

Body = Mapping[str, Any]
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")


class McpRenderError(ValueError):
    pass


@dataclass
class McpSources:
    """What the mcp section renders from (bodies already selected for the gateway, sorted)."""

    gateway: Body
    servers: Sequence[Body]
    secrets: Mapping[str, Mapping[str, str]]


def render_mcp(sources: McpSources, secret_data: dict[str, str], missing: list[Any]) -> McpConfig | None:
    """The ``mcp`` section; missing secrets are appended to ``missing``; ``McpRenderError`` if invalid."""
    spec = LLMGatewaySpec.model_validate(sources.gateway.get("spec") or {})
    meta = sources.gateway["metadata"]
    if not sources.servers and spec.mcp is None:
        return None
    resolve = _Resolver(sources.secrets, secret_data, missing)
    servers = [_server(body, str(meta["namespace"]), resolve) for body in sources.servers]
    data: dict[str, Any] = {"servers": servers}
    gateway_mcp = spec.mcp
    if gateway_mcp is not None:
        agent: dict[str, Any] = {}
        if gateway_mcp.max_depth is not None:
            agent["max_depth"] = gateway_mcp.max_depth
        if gateway_mcp.max_time_seconds is not None:
            agent["max_time_s"] = gateway_mcp.max_time_seconds
        data["agent"] = agent
        data["log_content"] = gateway_mcp.log_content
        hosts = _service_hosts(str(meta["name"]), str(meta["namespace"]))
        serve: dict[str, Any] = {
            "enabled": gateway_mcp.serve,
            "allowed_hosts": [*LOOPBACK_HOSTS, *hosts, *sorted(set(gateway_mcp.allowed_hosts))],
            "bundles": [bundle.model_dump() for bundle in sorted(gateway_mcp.bundles, key=lambda b: b.name)],
        }
        if gateway_mcp.token_secret_ref is not None:
            ref = gateway_mcp.token_secret_ref
            serve["token"] = resolve(("LLMGateway", str(meta["name"])), "mcp.token", ref.name, ref.key, "")
        data["serve"] = serve
    try:
        return McpConfig.model_validate(data)
    except ValidationError as error:
        raise McpRenderError(f"the selected LLMMCPServers do not form a valid config: {error}") from None


class _Resolver:
    def __init__(
        self, secrets: Mapping[str, Mapping[str, str]], data: dict[str, str], missing: list[Any]
    ) -> None:
        self._secrets = secrets
        self._data = data
        self._missing = missing

    def __call__(self, owner: tuple[str, str], data_key: str, secret: str, key: str, prefix: str) -> str:
        value = self._secrets.get(secret, {}).get(key, "").strip()
        if not value:
            kind, name = owner
            self._missing.append(MissingRef(name, secret, key, secret in self._secrets, kind=kind))
        self._data[data_key] = prefix + value
        return f"secret:{data_key}"


def _server(body: Body, namespace: str, resolve: _Resolver) -> dict[str, Any]:
    name = str(body["metadata"]["name"])
    owner = ("LLMMCPServer", name)
    try:
        spec = LLMMCPServerSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise McpRenderError(f"LLMMCPServer {name!r}: {error}") from None
    server: dict[str, Any] = {"name": name, "transport": spec.transport, "protocol": spec.protocol}
    if spec.transport == "stdio":
        server.update(command=spec.command, args=list(spec.args), env=dict(sorted(spec.env.items())))
        server["secret_env"] = _secret_env(name, owner, spec.secret_env, resolve)
    else:
        server["url"] = spec.url or _service_url(spec.service_ref, namespace)
        server["headers"] = dict(sorted(spec.headers.items()))
        server["secret_headers"] = _secret_headers(name, owner, spec.secret_headers, resolve)
    if spec.tools is not None:
        server["tools"] = {"include": list(spec.tools.include), "exclude": list(spec.tools.exclude)}
    server["auto_execute"] = list(spec.auto_execute)
    if spec.timeouts is not None:
        fields = {
            "connect_seconds": "connect_s",
            "call_seconds": "call_s",
            "health_interval_seconds": "health_interval_s",
        }
        server["timeouts"] = {
            ours: getattr(spec.timeouts, theirs)
            for theirs, ours in fields.items()
            if getattr(spec.timeouts, theirs) is not None
        }
    grants = sorted(spec.virtual_keys, key=lambda grant: grant.key)
    server["access"] = {
        "virtual_keys": [{"key": g.key, "tools": list(g.tools)} for g in grants],
        "anonymous": spec.anonymous,
    }
    return server


def _secret_headers(
    name: str, owner: tuple[str, str], headers: Sequence[SecretHeader], resolve: _Resolver
) -> dict[str, str]:
    return _secret_refs(name, owner, "h", [(h.name, h.secret_key_ref, h.prefix) for h in headers], resolve)


def _secret_env(
    name: str, owner: tuple[str, str], env: Sequence[SecretEnv], resolve: _Resolver
) -> dict[str, str]:
    return _secret_refs(name, owner, "e", [(e.name, e.secret_key_ref, "") for e in env], resolve)


def _secret_refs(
    name: str,
    owner: tuple[str, str],
    tag: str,
    entries: Sequence[tuple[str, SecretKeySelector, str]],
    resolve: _Resolver,
) -> dict[str, str]:
    """``{header or variable: secret:mcp.<server>.<tag><n>}``, each value put in the gateway's Secret."""
    out: dict[str, str] = {}
    for index, (field, ref, prefix) in enumerate(sorted(entries, key=lambda entry: entry[0])):
        out[field] = resolve(owner, f"mcp.{name}.{tag}{index}", ref.name, ref.key, prefix)
    return out


def _service_url(ref: ServiceRef | None, namespace: str) -> str | None:
    if ref is None:
        return None
    return f"{ref.scheme}://{ref.name}.{ref.namespace or namespace}.svc:{ref.port}{ref.path or '/mcp'}"


def _service_hosts(service: str, namespace: str) -> list[str]:
    names = (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )
    return [f"{host}{port}" for host in names for port in ("", ":*")]


def referenced_secret_names(servers: Sequence[Body], gateway: Body) -> set[str]:
    """Secrets the MCP servers and the gateway's /mcp token point at (read leniently)."""
    names: set[str] = set()
    for body in servers:
        spec = body.get("spec") or {}
        for entry in [*(spec.get("secretHeaders") or []), *(spec.get("secretEnv") or [])]:
            name = (entry.get("secretKeyRef") or {}).get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name:
                names.add(name)
    token = (((gateway.get("spec") or {}).get("mcp") or {}).get("tokenSecretRef") or {}).get("name")
    if isinstance(token, str) and token:
        names.add(token)
    return names
