"""The plugin pipeline and its contract (v2). Every clause is tested in ``tests/plugins/``.

1. **Built once per config revision** from the enabled plugins, sorted by ``order`` (then name).
   Which hooks a plugin implements is checked here, once: a hook nobody implements costs nothing.
2. **Instances outlive revisions.** A revision that leaves a plugin's name, type and settings
   unchanged keeps the *same instance* (its connections, counters, sessions). A new or changed one
   is built and ``start()``-ed before the revision that uses it serves; the one it replaces is
   ``stop()``-ped after the last request of the revisions that used it has ended (at most
   ``server.drain_timeout_s`` later). A plugin that fails to start rejects the whole revision.
   The registry builds a changed instance with the one it replaces at hand, so it may take over
   what did not change (governance keeps its Redis connection and counts that way).
3. **Typed settings.** Each plugin type declares a pydantic ``Settings`` model (``extra="forbid"``):
   a typo'd or ill-typed setting is a ``ConfigError`` naming ``plugins[NAME].settings.FIELD``, on
   every config path (file, Kubernetes source, and the operator, which checks LLMPlugin CRs against
   the same models before rendering).
4. ``pre_request`` hooks run in order before routing, seeing the typed request (headers, credential,
   identity). One may **short-circuit**: return ``ShortCircuit.answer`` (a reply), ``.fail`` (an
   error), or ``.replay`` (a stream of core chunks: a stream request gets a stream, in the caller's
   dialect), or raise a ``GatewayError``. Later pre-hooks and routing are then skipped. Headers a
   hook appends to ``request.response_headers`` (before the response starts) go out with whatever
   response the request gets, streams included (post-hooks never see a stream).
5. ``before_attempt`` / ``after_attempt`` run around **every upstream call** (retries and fallbacks
   included), in order. Before: the hook sees provider, model, key name and URL, may add headers for
   this attempt (``Attempt.headers``: per attempt, never shared) or pin a key by name. After: status,
   error, latency, usage.
6. ``post_response`` hooks run in *reverse* order for answers that are not streams (errors
   included), before they are sent, and only for plugins reached on the way in (the
   short-circuiting one included). One may replace the outcome.
7. ``on_chunk`` sees each core chunk of a stream, in order, before it is rendered. While any plugin
   has this hook, streams are translated rather than passed through (the hook needs core chunks).
8. ``on_complete`` hooks run after the response's last byte was sent (streams included), in reverse
   order, for plugins reached: logging, cost, metrics. They run in the request's own task once the
   response is complete, so a slow one delays no client and no stream end, and costs no extra task.
9. **Failures.** A hook that raises anything but ``GatewayError`` is logged and counted
   (``asbru_plugin_errors_total{plugin,hook}``). A plugin that fails *open* (the default) is then
   skipped, as if the hook returned None; one that fails *closed* (``fail_open = False``) makes the
   request fail with 503 ``plugin_unavailable`` if the hook runs before the response (pre_request,
   before_attempt, post_response). After the response there is nothing left to fail.
10. ``authenticate`` resolves a caller for requests that are not LLM requests (``/mcp``,
    ``/v1/mcp/tool/execute``): the first plugin that returns an ``Identity`` decides; a
    ``GatewayError`` refuses the caller. In agent mode one request makes several upstream calls:
    the attempt hooks run around each, and ``request.usage`` is their sum once the request is done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asbru_gateway.core.attempt import Attempt
from asbru_gateway.core.headers import RequestHeaders
from asbru_gateway.core.identity import ClientCredential, Identity
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.core.schema import Chunk
from asbru_gateway.errors import GatewayError
from asbru_gateway.observability import metrics
from asbru_gateway.plugins.base import (
    AttemptHook,
    Authenticator,
    ChunkHook,
    CompletionHook,
    Outcome,
    PostHook,
    PreHook,
    ShortCircuit,
)

log = logging.getLogger(__name__)


class PluginUnavailableError(GatewayError):
    status = 503
    type = "server_error"
    code = "plugin_unavailable"


class Pipeline:
    __slots__ = (
        "_attempt",
        "_auth",
        "_chunk",
        "_complete",
        "_plugins",
        "_post",
        "_pre",
        "has_attempt_hooks",
        "has_authenticators",
        "has_chunk_hooks",
        "has_complete_hooks",
        "has_post_hooks",
        "has_pre_hooks",
        "size",
    )

    def __init__(self, plugins: Sequence[object]) -> None:
        self._plugins = tuple(plugins)
        # Per plugin position: its hook (or None), so "reached" slices line up with positions.
        self._pre = tuple(p if isinstance(p, PreHook) else None for p in self._plugins)
        self._post = tuple(p if isinstance(p, PostHook) else None for p in self._plugins)
        self._complete = tuple(p if isinstance(p, CompletionHook) else None for p in self._plugins)
        self._attempt = tuple(p for p in self._plugins if isinstance(p, AttemptHook))
        self._chunk = tuple(p for p in self._plugins if isinstance(p, ChunkHook))
        self._auth = tuple(p for p in self._plugins if isinstance(p, Authenticator))
        self.has_authenticators = bool(self._auth)
        self.has_pre_hooks = any(hook is not None for hook in self._pre)
        self.has_post_hooks = any(hook is not None for hook in self._post)
        self.has_complete_hooks = any(hook is not None for hook in self._complete)
        self.has_attempt_hooks = bool(self._attempt)
        self.has_chunk_hooks = bool(self._chunk)
        self.size = len(self._plugins)
        """With no pre-hooks every plugin counts as reached: callers may skip ``pre`` entirely."""

    @property
    def plugins(self) -> tuple[object, ...]:
        return self._plugins

    async def pre(self, request: LLMRequest) -> tuple[int, ShortCircuit | None]:
        """Run pre-hooks; returns how many plugins were reached, and a short-circuit if any."""
        for index, hook in enumerate(self._pre):
            if hook is None:
                continue
            try:
                result = await hook.pre_request(request)
            except GatewayError as error:
                return index + 1, ShortCircuit.fail(error)
            except Exception:
                if _failed(hook, "pre_request"):
                    return index + 1, ShortCircuit.fail(_unavailable(hook))
                continue
            if result is not None:
                return index + 1, result
        return len(self._pre), None

    async def authenticate(
        self, credential: ClientCredential | None, headers: RequestHeaders
    ) -> Identity | None:
        for hook in self._auth:
            try:
                identity = await hook.authenticate(credential, headers)
            except GatewayError:
                raise
            except Exception:
                if _failed(hook, "authenticate"):
                    raise _unavailable(hook) from None
                continue
            if identity is not None:
                return identity
        return None

    async def before_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        for hook in self._attempt:
            try:
                await hook.before_attempt(request, attempt)
            except GatewayError:
                raise
            except Exception:
                if _failed(hook, "before_attempt"):
                    raise _unavailable(hook) from None

    async def after_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        for hook in self._attempt:
            try:
                await hook.after_attempt(request, attempt)
            except Exception:
                _failed(hook, "after_attempt", closed=False)

    async def post(self, request: LLMRequest, outcome: Outcome, reached: int) -> Outcome:
        for hook in reversed(self._post[:reached]):
            if hook is None:
                continue
            try:
                replaced = await hook.post_response(request, outcome)
            except Exception:
                if _failed(hook, "post_response"):
                    error = _unavailable(hook)
                    return Outcome(error.status, error=error)
                continue
            if replaced is not None:
                outcome = replaced
        return outcome

    def chunk(self, request: LLMRequest, chunk: Chunk) -> Chunk:
        for hook in self._chunk:
            try:
                replaced = hook.on_chunk(request, chunk)
            except Exception:
                _failed(hook, "on_chunk", closed=False)
                continue
            if replaced is not None:
                chunk = replaced
        return chunk

    async def complete(self, request: LLMRequest, outcome: Outcome, reached: int) -> None:
        for hook in reversed(self._complete[:reached]):
            if hook is None:
                continue
            try:
                await hook.on_complete(request, outcome)
            except Exception:
                _failed(hook, "on_complete", closed=False)


def _failed(hook: object, where: str, *, closed: bool = True) -> bool:
    """Log and count a plugin bug; True if the plugin fails closed (and ``closed`` applies)."""
    name = str(getattr(hook, "name", type(hook).__name__))
    log.exception("plugin %s failed in %s", name, where)
    metrics.PLUGIN_ERRORS.labels(name, where).inc()
    return closed and not getattr(hook, "fail_open", True)


def _unavailable(hook: object) -> PluginUnavailableError:
    name = str(getattr(hook, "name", type(hook).__name__))
    return PluginUnavailableError(f"plugin {name!r} failed; the request was refused (it fails closed)")
