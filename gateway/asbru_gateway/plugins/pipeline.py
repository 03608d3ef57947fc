"""The plugin pipeline and its ordering contract.

The contract, which every plugin may rely on:

1. Built once per config revision from the enabled plugins, sorted by ``order`` (then name).
   Which hooks a plugin implements is checked here, once; a missing hook costs nothing per request.
2. ``pre_request`` hooks run in order before routing. A pre-hook may short-circuit by returning
   a ``ShortCircuit`` (a full response, e.g. a cache hit) or by raising a ``GatewayError``
   (e.g. a budget denial): later pre-hooks and routing are skipped.
3. ``post_response`` hooks run in *reverse* order, and only for plugins the pipeline reached on the
   way in (the short-circuiting plugin included, those after it not). A post-hook may replace the
   outcome. For a stream they run once the stream has ended, with an empty body.
4. ``on_chunk`` runs for every OpenAI SSE event of a stream, in order, before it is sent.
5. A plugin that raises anything but ``GatewayError`` is logged and counted
   (``asbru_plugin_errors_total``) and otherwise ignored: the client never sees a plugin's bug,
   and the request goes on as if that hook had returned None.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asbru_gateway.errors import GatewayError
from asbru_gateway.observability import metrics
from asbru_gateway.plugins.base import (
    ChunkHook,
    Closeable,
    Outcome,
    PostHook,
    PreHook,
    RequestContext,
    ShortCircuit,
)

log = logging.getLogger(__name__)


class Pipeline:
    __slots__ = ("_chunk", "_plugins", "_post", "_pre", "has_chunk_hooks", "has_pre_hooks", "size")

    def __init__(self, plugins: Sequence[object]) -> None:
        self._plugins = tuple(plugins)
        # For each plugin position: its pre-hook (or None) and post-hook (or None).
        self._pre = tuple(p if isinstance(p, PreHook) else None for p in self._plugins)
        self._post = tuple(p if isinstance(p, PostHook) else None for p in self._plugins)
        self._chunk = tuple(p for p in self._plugins if isinstance(p, ChunkHook))
        self.has_chunk_hooks = bool(self._chunk)
        self.has_pre_hooks = any(hook is not None for hook in self._pre)
        self.size = len(self._plugins)
        """With no pre-hooks every plugin counts as reached: callers may skip ``pre`` entirely."""

    async def pre(self, ctx: RequestContext) -> tuple[int, ShortCircuit | None]:
        """Run pre-hooks; returns how many plugins were reached, and a short-circuit if any."""
        for index, hook in enumerate(self._pre):
            if hook is None:
                continue
            try:
                result = await hook.pre_request(ctx)
            except GatewayError as error:
                return index + 1, ShortCircuit(Outcome(error.status, error=error))
            except Exception:
                _plugin_failed(hook.name, "pre_request")
                continue
            if result is not None:
                return index + 1, result
        return len(self._pre), None

    async def post(self, ctx: RequestContext, outcome: Outcome, reached: int) -> Outcome:
        for hook in reversed(self._post[:reached]):
            if hook is None:
                continue
            try:
                replaced = await hook.post_response(ctx, outcome)
            except Exception:
                _plugin_failed(hook.name, "post_response")
                continue
            if replaced is not None:
                outcome = replaced
        return outcome

    def chunk(self, ctx: RequestContext, event: bytes) -> bytes:
        for hook in self._chunk:
            try:
                replaced = hook.on_chunk(ctx, event)
            except Exception:
                _plugin_failed(hook.name, "on_chunk")
                continue
            if replaced is not None:
                event = replaced
        return event

    async def aclose(self) -> None:
        for plugin in self._plugins:
            if isinstance(plugin, Closeable):
                try:
                    await plugin.aclose()
                except Exception:
                    _plugin_failed(type(plugin).__name__, "aclose")


def _plugin_failed(name: str, hook: str) -> None:
    log.exception("plugin %s failed in %s; ignored", name, hook)
    metrics.PLUGIN_ERRORS.labels(name).inc()
