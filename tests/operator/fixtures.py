"""Example custom resources shared by the renderer and end-to-end tests."""

from __future__ import annotations

import base64
from typing import Any

NS = "default"


def gateway(name: str = "gw", *, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asbru.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "labels": {"env": "test"},
        },
        "spec": {"replicas": replicas, **spec},
    }


def provider(
    name: str = "openai", *, secret: str = "openai-keys", key: str = "api-key", **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "openai",
        "baseURL": "https://api.openai.com/v1",
        "keys": [{"name": "primary", "secretKeyRef": {"name": secret, "key": key}}],
    }
    body.update(spec)
    return {
        "apiVersion": "asbru.dev/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": body,
    }


def route(name: str = "gpt-4o", *, provider_name: str = "openai", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asbru.dev/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"targets": [{"provider": provider_name, "model": "gpt-4o"}], **spec},
    }


def plugin(name: str = "telemetry", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asbru.dev/v1alpha1",
        "kind": "LLMPlugin",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"type": "telemetry", "order": 10, "settings": {"stream_timings": False}, **spec},
    }


def mcp_server(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "asbru.dev/v1alpha1",
        "kind": "LLMMCPServer",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1, "labels": {}},
        "spec": spec,
    }


def secret(name: str = "openai-keys", **data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": encoded,
    }
