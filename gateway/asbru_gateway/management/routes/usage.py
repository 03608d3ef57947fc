"""Usage and remaining limits per virtual key, team, provider and model."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, HTTPException

from asbru_gateway.management.deps import Admin, GovernanceViews
from asbru_gateway.management.schemas import KeyView, ModelView, ProviderView, StoreView, TeamView

T = TypeVar("T")
router = APIRouter(prefix="/v1", dependencies=[Admin], tags=["usage"])


def _found(value: T | None, what: str) -> T:
    if value is None:
        raise HTTPException(status_code=404, detail=f"no {what} of that name is configured")
    return value


@router.get("/keys", response_model=list[KeyView], summary="Every virtual key: limits, remaining, usage")
async def keys(views: GovernanceViews) -> list[KeyView]:
    return [_found(await views.key(name), "virtual key") for name in sorted(views.compiled.keys.entries)]


@router.get("/keys/{name}", response_model=KeyView, summary="One virtual key")
async def key(name: str, views: GovernanceViews) -> KeyView:
    return _found(await views.key(name), "virtual key")


@router.get("/teams", response_model=list[TeamView])
async def teams(views: GovernanceViews) -> list[TeamView]:
    return [_found(await views.team(name), "team") for name in sorted(views.compiled.team_limits)]


@router.get("/teams/{name}", response_model=TeamView)
async def team(name: str, views: GovernanceViews) -> TeamView:
    return _found(await views.team(name), "team")


@router.get("/providers", response_model=list[ProviderView])
async def providers(views: GovernanceViews) -> list[ProviderView]:
    return [_found(await views.provider(p.name), "provider") for p in views.config.providers]


@router.get("/providers/{name}", response_model=ProviderView)
async def provider(name: str, views: GovernanceViews) -> ProviderView:
    return _found(await views.provider(name), "provider")


@router.get("/models", response_model=list[ModelView], summary="Configured models: prices and usage")
async def models(views: GovernanceViews) -> list[ModelView]:
    return await views.models()


@router.get("/store", response_model=StoreView, summary="Where the counters live, and whether it answers")
async def store(views: GovernanceViews) -> StoreView:
    return views.store()
