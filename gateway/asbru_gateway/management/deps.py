"""Dependencies of the management routes, as ``Annotated`` aliases: the admin token, the views."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from asbru_gateway.management.views import Views
from asbru_gateway.plugins.builtin.governance import NAME, GovernancePlugin
from asbru_gateway.runtime.gateway import Gateway, Snapshot


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _admin(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_asbru_admin_token: Annotated[str | None, Header()] = None,
) -> None:
    """``Authorization: Bearer TOKEN`` or ``x-asbru-admin-token: TOKEN``; compared in constant time."""
    expected: str = request.app.state.admin_token
    presented = x_asbru_admin_token
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise HTTPException(
            status_code=401, detail="admin token required", headers={"WWW-Authenticate": "Bearer"}
        )


def _snapshot(gateway: Annotated[Gateway, Depends(_gateway)]) -> Snapshot:
    snapshot = gateway.current
    if snapshot is None:
        raise HTTPException(status_code=503, detail="no config applied yet")
    return snapshot


def _views(snapshot: Annotated[Snapshot, Depends(_snapshot)]) -> Views:
    found = snapshot.plugins.instances.get(NAME)
    if found is None or not isinstance(found[1], GovernancePlugin):
        raise HTTPException(status_code=404, detail="governance is not configured")
    return Views(found[1], snapshot.config)


Admin = Depends(_admin)
CurrentSnapshot = Annotated[Snapshot, Depends(_snapshot)]
GovernanceViews = Annotated[Views, Depends(_views)]
