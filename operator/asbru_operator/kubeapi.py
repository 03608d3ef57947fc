"""The one module that talks to the Kubernetes API (besides kopf itself).

A deliberately small async client on aiohttp: get, list, server-side apply, status patch. It takes
its credentials from the official client's config loaders (in-cluster service account or a
kubeconfig), exactly as kopf's own login does, so both always talk to the same cluster as the same
identity, and it stays independent of the generated client's internals, which change between
releases.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from asbru_operator.crd_models.common import GROUP, VERSION
from asbru_operator.render.names import FIELD_MANAGER

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApiResource:
    """A resource's REST coordinates: ``/api/v1/...`` for the core group, ``/apis/g/v/...`` otherwise."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root, "namespaces", namespace, self.plural, name, subresource]
        return "/".join(part for part in parts if part)


GATEWAYS = ApiResource(GROUP, VERSION, "llmgateways")
PROVIDERS = ApiResource(GROUP, VERSION, "llmproviders")
ROUTES = ApiResource(GROUP, VERSION, "llmroutes")
PLUGINS = ApiResource(GROUP, VERSION, "llmplugins")
MCP_SERVERS = ApiResource(GROUP, VERSION, "llmmcpservers")
VIRTUAL_KEYS = ApiResource(GROUP, VERSION, "llmvirtualkeys")
TEAMS = ApiResource(GROUP, VERSION, "llmteams")
SECRETS = ApiResource("", "v1", "secrets")
PODS = ApiResource("", "v1", "pods")

_BY_KIND = {
    ("v1", "ConfigMap"): ApiResource("", "v1", "configmaps"),
    ("v1", "Secret"): SECRETS,
    ("v1", "Service"): ApiResource("", "v1", "services"),
    ("v1", "ServiceAccount"): ApiResource("", "v1", "serviceaccounts"),
    ("apps/v1", "Deployment"): ApiResource("apps", "v1", "deployments"),
    ("rbac.authorization.k8s.io/v1", "Role"): ApiResource("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ApiResource(
        "rbac.authorization.k8s.io", "v1", "rolebindings"
    ),
    ("policy/v1", "PodDisruptionBudget"): ApiResource("policy", "v1", "poddisruptionbudgets"),
}


class KubeApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


def resource_of(obj: Mapping[str, Any]) -> ApiResource:
    """The REST resource of a built-in object the operator writes."""
    return _BY_KIND[(str(obj["apiVersion"]), str(obj["kind"]))]


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate: shared with kopf's login (same identity)."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    insecure: bool = False


class KubeApi:
    """Async access to the API server; ``headers`` is called per request (tokens rotate)."""

    def __init__(
        self,
        server: str,
        *,
        headers: Callable[[], Mapping[str, str]] = dict,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 30.0,
        configuration: Any = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._configuration = configuration
        self._headers = headers
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
        """In-cluster service account if available, else the kubeconfig (``$KUBECONFIG``/~/.kube/config)."""
        from kubernetes import client, config  # noqa: PLC0415  (only the loaders, only at start-up)

        configuration = client.Configuration()
        in_cluster = False
        if kubeconfig is None:
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                in_cluster = True
            except config.ConfigException:
                pass
        if not in_cluster:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        return cls(
            configuration.host,
            headers=lambda: _auth_headers(configuration),
            ssl_context=_ssl_context(configuration) if configuration.host.startswith("https") else None,
            configuration=configuration,
        )

    def credentials(self) -> Credentials:
        """The current credentials (re-read on each call, so a rotated token is picked up)."""
        configuration = self._configuration
        if configuration is None:
            return Credentials(server=self.server)
        auth = _auth_headers(configuration).get("authorization", "")
        return Credentials(
            server=self.server,
            token=auth.removeprefix("Bearer ").strip() or None,
            ca_path=configuration.ssl_ca_cert,
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
            insecure=not configuration.verify_ssl,
        )

    async def close(self) -> None:
        """Close the connection pool; later requests fail (handlers still running at shutdown)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, resource: ApiResource, namespace: str, name: str) -> Obj | None:
        try:
            return await self._request("GET", resource.path(namespace, name))
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, resource: ApiResource, namespace: str, label_selector: str | None = None
    ) -> list[Obj]:
        params = {"labelSelector": label_selector} if label_selector else None
        answer = await self._request("GET", resource.path(namespace), params=params)
        return list(answer.get("items") or [])

    async def apply(self, obj: Obj) -> Obj:
        """Server-side apply (force: the operator owns these objects); create if the server cannot."""
        resource, meta = resource_of(obj), obj["metadata"]
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        try:
            return await self._request(
                "PATCH",
                resource.path(meta["namespace"], meta["name"]),
                params=params,
                body=obj,
                content_type="application/apply-patch+yaml",
            )
        except KubeApiError as error:
            if error.status != 404:  # real API servers create on apply; emulators may not
                raise
        return await self._request("POST", resource.path(meta["namespace"]), body=obj)

    async def patch_status(self, resource: ApiResource, namespace: str, name: str, status: Obj) -> None:
        """Merge-patch the status subresource (never the spec: that is the user's)."""
        await self._request(
            "PATCH",
            resource.path(namespace, name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        if self._closed:
            raise KubeApiError(0, "the client is closed (the operator is stopping)")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {**self._headers(), "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = orjson.dumps(body)
        try:
            async with self._session.request(
                method, self.server + path, params=params, data=data, headers=headers, ssl=self._ssl or True
            ) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:  # transport trouble: retryable like a 5xx
            raise KubeApiError(0, f"{method} {path}: {error!r}") from error
        if status >= 400:
            raise KubeApiError(status, _message(payload))
        result: Obj = orjson.loads(payload) if payload else {}
        return result


def _message(payload: bytes) -> str:
    try:
        return str(orjson.loads(payload).get("message", payload[:200]))
    except (orjson.JSONDecodeError, AttributeError):
        return payload[:200].decode("utf-8", "replace")


def _auth_headers(configuration: Any) -> dict[str, str]:
    """Header credentials from the official client's config (refreshes rotating tokens on the way)."""
    headers = {}
    for setting in configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[str(setting["key"])] = str(setting["value"])
    return headers


def _ssl_context(configuration: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
