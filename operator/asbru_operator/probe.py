"""Ask each gateway pod what it serves (``GET /readyz``), concurrently, with a short timeout.

A pod reports the revision it serves, the config schema minor it reads, and the last revision it
refused and why; the operator turns that into ``Programmed`` and into the schema it renders for.
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
from asbru_operator.render.status import PodReport

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


def parse_readyz(pod: str, answer: Any) -> PodReport:
    """A report from a ``/readyz`` JSON answer (200 or 503: a starting pod may have refused its
    first config); anything that is not a gateway's answer says nothing."""
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
        return PodReport(pod)
    revision = answer.get("revision") if answer["status"] == "ready" else None
    schema = answer.get("schema")
    minor = schema.get("minor") if isinstance(schema, dict) else 0
    rejected = answer.get("rejected")
    if not isinstance(rejected, dict):
        rejected = {}
    return PodReport(
        pod,
        revision=str(revision) if revision else None,
        schema_minor=minor if isinstance(minor, int) and not isinstance(minor, bool) and minor >= 0 else None,
        rejected_revision=_text(rejected.get("revision")),
        rejected_reason=_text(rejected.get("reason")),
    )


async def pod_reports(
    session: aiohttp.ClientSession, pods: Sequence[Mapping[str, Any]], pod_url: PodUrl, timeout_s: float
) -> list[PodReport]:
    """A report from each running pod (an empty one when it does not answer in ``timeout_s``)."""
    running = [pod for pod in pods if is_running(pod)]
    return list(await asyncio.gather(*(_report(session, pod, pod_url(pod), timeout_s) for pod in running)))


async def _report(
    session: aiohttp.ClientSession, pod: Mapping[str, Any], base: str | None, timeout_s: float
) -> PodReport:
    name = str((pod.get("metadata") or {}).get("name"))
    if base is None:
        return PodReport(name)
    try:
        async with session.get(f"{base}/readyz", timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            answer = orjson.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return PodReport(name)
    return parse_readyz(name, answer)


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and value != "" else None
