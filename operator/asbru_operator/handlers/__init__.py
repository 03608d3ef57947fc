"""kopf handlers, one module per kind, all thin: they pick the context out of ``memo`` and delegate.

``build_registry`` registers them on a fresh registry (no import-time global state), so the CLI and
each test run get their own.
"""

from __future__ import annotations

import kopf

from asbru_operator.handlers import (
    gateway,
    lifecycle,
    mcp_server,
    plugin,
    provider,
    route,
    secret,
    virtual_key,
)


def build_registry(
    *, probe_interval_s: float = 3.0, resync_interval_s: float = 300.0, usage_interval_s: float = 10.0
) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator."""
    registry = kopf.OperatorRegistry()
    lifecycle.register(registry)
    gateway.register(
        registry,
        probe_interval_s=probe_interval_s,
        resync_interval_s=resync_interval_s,
        usage_interval_s=usage_interval_s,
    )
    provider.register(registry)
    route.register(registry)
    plugin.register(registry)
    mcp_server.register(registry)
    secret.register(registry)
    virtual_key.register(registry)
    return registry
