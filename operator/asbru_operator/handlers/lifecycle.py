"""Operator start-up and shutdown: kopf settings under our own API group, and closing clients."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from asbru_operator.context import context_of
from asbru_operator.crd_models.common import GROUP


def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """kopf's bookkeeping annotations carry our group, not kopf.dev, so users see whose they are;
    Kubernetes Events are posted for warnings only (status carries the rest).

    No handler needs a finalizer; the name is kept so that kopf removes the one older operators
    (with a per-gateway probe daemon) put on every LLMGateway.
    """
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    # A missing Secret is retried by the handler; the Secret watcher usually fixes it sooner.
    settings.execution.max_workers = 4


def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    """kopf logs in with the very credentials the operator's own client uses (one identity)."""
    creds = context_of(memo).api.credentials()
    return kopf.ConnectionInfo(
        server=creds.server,
        scheme="Bearer" if creds.token else None,
        token=creds.token,
        ca_path=creds.ca_path,
        certificate_path=creds.certificate_path,
        private_key_path=creds.private_key_path,
        insecure=creds.insecure,
    )


async def close_clients(memo: Any, **_: Any) -> None:
    await context_of(memo).close()


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.startup(registry=registry)(configure)
    kopf.on.login(registry=registry)(login)
    kopf.on.cleanup(registry=registry)(close_clients)
