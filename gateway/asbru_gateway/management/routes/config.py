"""The effective config: what this process serves, with key hashes redacted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from asbru_gateway.management.deps import Admin, CurrentSnapshot
from asbru_gateway.management.views import redacted_config

router = APIRouter(prefix="/v1", dependencies=[Admin], tags=["config"])


@router.get("/config", summary="The served config (secret references, never values; key hashes redacted)")
async def config(snapshot: CurrentSnapshot) -> dict[str, Any]:
    return {"revision": snapshot.revision, "config": redacted_config(snapshot.config)}
