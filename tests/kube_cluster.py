"""A Kubernetes API for tests: kmock (the emulator by kopf's author) plus helpers to write objects.

Objects are changed through kmock's HTTP API, not its in-memory store, because only API writes
reach watch streams.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kmock

from asbru_gateway.config.kube_source import REVISION_ANNOTATION

NAMESPACE = "llm"
NAME = "gw"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Cluster:
    """Writes the gateway's ConfigMap and Secret through kmock's HTTP API (so watches see them)."""

    def __init__(self, server: kmock.KubernetesEmulator) -> None:
        self.server = server

    async def _call(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> None:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self.server.request(method, url, json=body, headers=headers) as response:
            assert response.status < 300, await response.text()

    def _url(self, plural: str, name: str | None = None) -> str:
        return f"/api/v1/namespaces/{NAMESPACE}/{plural}" + (f"/{name}" if name else "")

    async def create_configmap(self, text: str, revision: str | None = None) -> None:
        metadata = {"name": NAME, "namespace": NAMESPACE, **meta(revision).get("metadata", {})}
        body = {"metadata": metadata, "data": {"config.json": text}}
        await self._call("POST", self._url("configmaps"), body)

    async def update_configmap(self, text: str, revision: str | None = None) -> None:
        await self._call(
            "PATCH", self._url("configmaps", NAME), {**meta(revision), "data": {"config.json": text}}
        )

    async def delete_configmap(self) -> None:
        await self._call("DELETE", self._url("configmaps", NAME))

    async def create_secret(self, data: Mapping[str, str], revision: str | None = None) -> None:
        encoded = {key: b64(value) for key, value in data.items()}
        metadata = {"name": NAME, "namespace": NAMESPACE, **meta(revision).get("metadata", {})}
        body = {"metadata": metadata, "type": "Opaque", "data": encoded}
        await self._call("POST", self._url("secrets"), body)

    async def update_secret(self, data: Mapping[str, str], revision: str | None = None) -> None:
        encoded = {key: b64(value) for key, value in data.items()}
        await self._call("PATCH", self._url("secrets", NAME), {**meta(revision), "data": encoded})


def meta(revision: str | None) -> dict[str, Any]:
    """A patch fragment setting the operator's revision annotation, when given."""
    return {"metadata": {"annotations": {REVISION_ANNOTATION: revision}}} if revision else {}


def load_bundled_resources(server: kmock.KubernetesEmulator) -> None:
    # load_bundled() uses importlib.resources.read_binary, deprecated on 3.11 (warnings are errors).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.resources.load_bundled()


def write_kubeconfig(path: Path, server: kmock.KubernetesEmulator) -> Path:
    """A developer's kubeconfig pointing at the emulator: exercises the out-of-pod path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": str(server.url).rstrip("/")}}],
        "users": [{"name": "dev", "user": {"token": "dev-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "dev"}}],
        "current-context": "kmock",
    }
    path.write_text(json.dumps(config))  # JSON is valid kubeconfig YAML
    return path
