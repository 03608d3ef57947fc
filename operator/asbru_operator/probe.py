"""Ask each gateway pod which revision it serves (``GET /readyz``), concurrently, with a short timeout.

Where a pod is reached is a small injectable function (``PodUrl``): in a cluster it is the pod IP
and port 8080; tests point it at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from asbru_operator.render.governance import ADMIN_PORT
from asbru_operator.render.names import HTTP_PORT

PodUrl = Callable[[Mapping[str, Any]], str | None]
"""Base URL of a pod's gateway HTTP port, or None when it has no address yet."""


def pod_ip_url(pod: Mapping[str, Any]) -> str | None:
    """``http://<podIP>:8080``: the operator runs in the cluster network (or not at all for probes)."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    host = f"[{ip}]" if ":" in str(ip) else str(ip)
    return f"http://{host}:{HTTP_PORT}"


def pod_admin_url(pod: Mapping[str, Any]) -> str | None:
    """``http://<podIP>:9090``: the management API of a gateway with governance."""
    base = pod_ip_url(pod)
    return None if base is None else base.rsplit(":", 1)[0] + f":{ADMIN_PORT}"


def is_running(pod: Mapping[str, Any]) -> bool:
    """Running and not terminating: only such pods can count towards Programmed."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return status.get("phase") == "Running" and not meta.get("deletionTimestamp")


async def served_revisions(
    session: aiohttp.ClientSession, pods: Sequence[Mapping[str, Any]], pod_url: PodUrl, timeout_s: float
) -> list[str | None]:
    """The revision each running pod reports on /readyz (None: no answer, not ready, or no address)."""
    running = [pod for pod in pods if is_running(pod)]
    return list(await asyncio.gather(*(_revision(session, pod_url(pod), timeout_s) for pod in running)))


async def _revision(session: aiohttp.ClientSession, base: str | None, timeout_s: float) -> str | None:
    if base is None:
        return None
    try:
        async with session.get(f"{base}/readyz", timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                return None
            answer = orjson.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return None
    if not isinstance(answer, dict) or answer.get("status") != "ready":
        return None
    revision = answer.get("revision")
    return str(revision) if revision else None
