"""Reading Secrets: their data, decoded, for the renderers (which never see base64 or the API)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from typing import Any

from asbru_operator.kubeapi import SECRETS, KubeApi


async def fetch_secrets(api: KubeApi, namespace: str, names: set[str]) -> dict[str, dict[str, str]]:
    """The named Secrets' decoded data; absent ones are simply not in the result."""
    ordered = sorted(names)
    bodies = await asyncio.gather(*(api.get(SECRETS, namespace, name) for name in ordered))
    return {name: decode_secret(body) for name, body in zip(ordered, bodies, strict=True) if body is not None}


def decode_secret(body: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's data, base64-decoded; values that are not UTF-8 text are left out (as missing)."""
    decoded: dict[str, str] = {}
    for key, value in (body.get("data") or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return decoded
