"""``create_management_app``: the FastAPI application of the management API.

FastAPI because it is off the hot path (its cost per request does not matter here) and its
OpenAPI document (``/openapi.json``, browsable at ``/docs``) is the API's contract. Everything
but ``/healthz`` and the document needs the admin token.
"""

from __future__ import annotations

from fastapi import FastAPI

from asbru_gateway.management.routes import config, usage
from asbru_gateway.runtime.gateway import Gateway


def create_management_app(gateway: Gateway, admin_token: str) -> FastAPI:
    if not admin_token:
        raise ValueError("the management API needs an admin token")
    app = FastAPI(
        title="Asbru management API",
        summary="Usage, remaining limits and the effective config of one Asbru gateway",
        version="v1",
    )
    app.state.gateway = gateway
    app.state.admin_token = admin_token
    app.include_router(usage.router)
    app.include_router(config.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
