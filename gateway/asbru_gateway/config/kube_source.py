"""The gateway's Kubernetes config source: its ConfigMap and Secret, watched through the API.

The operator renders one ``LLMGateway`` into a ConfigMap ``N`` (key ``config.json``: the
``GatewayConfig`` with ``secret:KEY`` references) and a Secret ``N`` (the credentials). This module
watches both through the API server rather than a mounted volume, because the kubelet syncs
volumes about once a minute while a watch delivers a change in milliseconds.

What it promises the caller (``on_config``):

- only a valid combination is handed over: the config parses and validates, and every
  ``secret:KEY`` it references exists (non-empty) in the Secret;
- only a change is handed over: deduplicated on ``served_revision`` (config hash + Secret hash),
  the revision the operator computes too, so a key rotation is a change and a replay is not;
- a rejected combination is logged (never with secret values), kept in ``last_error`` and passed
  to ``on_error`` with the revision the operator annotated it with (if any); the last good config
  stays in service (the caller keeps serving it);
- a missing ConfigMap or Secret is waited for, never fatal; watches reconnect on their own.

Threads: the sync ``kubernetes`` client runs one watch thread per object (``kube_watch``); each
observation is hopped onto the event loop, where a single task evaluates the latest state, so
``on_config`` calls never overlap and always see the newest objects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, Self

import kubernetes

from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.kube_watch import ObjectData, ObjectWatcher, ObservedObject, WatchSettings
from asbru_gateway.config.loader import load_config_text
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import served_revision

__all__ = [
    "CONFIG_KEY",
    "ENV_VAR",
    "REVISION_ANNOTATION",
    "KubeConfigSource",
    "KubeSourceRef",
    "Pending",
    "WatchSettings",
    "decode_secret_data",
    "evaluate",
    "load_api_client",
    "redact",
    "secret_refs",
]

log = logging.getLogger(__name__)

CONFIG_KEY = "config.json"
"""The ConfigMap key holding the rendered ``GatewayConfig``."""
ENV_VAR = "ASBRU_KUBE_SOURCE"
"""Environment fallback of the ``--kube-source NAMESPACE/NAME`` flag."""
REVISION_ANNOTATION = "asbru.dev/revision"
"""The operator's annotation (``asbru_operator.render.names``) on both objects: the served revision
they add up to. Two different values mean one object is written and the other not yet."""

_CONFIGMAP = "ConfigMap"
_SECRET = "Secret"  # noqa: S105 - a kind name, not a credential
_SECRET_PREFIX = "secret:"  # noqa: S105 - a reference scheme, not a credential
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

OnConfig = Callable[[GatewayConfig, Mapping[str, str]], Awaitable[None]]


class OnError(Protocol):
    def __call__(self, reason: str, revision: str | None, *, counted: bool = False) -> None:
        """``counted``: the gateway refused it in ``apply`` and counted it there already."""


"""Called with the reason of a rejection and the refused revision (the operator's annotation)."""
ApiClientFactory = Callable[[], Any]
"""Returns a ``kubernetes.client.ApiClient``; called once per ``start()``, in a worker thread."""


@dataclass(frozen=True)
class KubeSourceRef:
    """Where the gateway's config lives: ConfigMap and Secret ``name`` in ``namespace``."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> KubeSourceRef:
        """Parse ``NAMESPACE/NAME``; a ``ValueError`` says what is wrong, so a bad flag fails early."""
        namespace, slash, name = text.strip().partition("/")
        if not slash or not namespace or not name:
            raise ValueError(f"kube source {text!r}: expected NAMESPACE/NAME, e.g. 'llm/my-gateway'")
        if not _DNS_LABEL.match(namespace):
            raise ValueError(
                f"kube source {text!r}: namespace {namespace!r} is not a DNS label "
                "(lowercase letters, digits and '-', at most 63 characters)"
            )
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            raise ValueError(
                f"kube source {text!r}: name {name!r} is not a valid object name "
                "(lowercase letters, digits, '-' and '.', at most 253 characters)"
            )
        return cls(namespace, name)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> KubeSourceRef | None:
        """The ref named by ``ASBRU_KUBE_SOURCE``, or ``None`` when unset or empty."""
        text = environ.get(ENV_VAR, "").strip()
        return cls.parse(text) if text else None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` for wherever the gateway runs.

    In a pod (and no kubeconfig asked for): the service account, with the client's token refresh
    (bound tokens rotate). Elsewhere: ``kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``,
    with ``context`` or the current one; never written back (``persist_config=False``), so a
    developer's kubeconfig is left as it was.
    """
    configuration = kubernetes.client.Configuration()
    try:
        if kubeconfig is None and context is None and _in_cluster():
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config",
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (kubernetes.config.ConfigException, OSError) as error:
        raise ConfigError(f"cannot load Kubernetes credentials: {error}") from None
    return kubernetes.client.ApiClient(configuration)


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and _SERVICE_ACCOUNT_TOKEN.exists()


class Pending(Exception):
    """Not an error: an object the config needs does not exist (yet). Wait for the watch."""

    routine = False
    """True for the waits every change passes through (the operator's two writes)."""


class MidUpdate(Pending):
    """The operator has written one of the ConfigMap/Secret pair but not yet the other."""

    routine = True


def secret_refs(config: GatewayConfig) -> dict[str, list[str]]:
    """``secret:KEY`` references of ``config``: key -> where it is used (for messages)."""
    refs: dict[str, list[str]] = {}
    for provider in config.providers:
        for key in provider.keys:
            if key.secret.startswith(_SECRET_PREFIX):
                where = f"provider {provider.name!r} key {key.name!r}"
                refs.setdefault(key.secret.removeprefix(_SECRET_PREFIX), []).append(where)
    for section in (config.mcp, config.governance):
        for ref in section.secret_refs() if section is not None else ():
            if ref.startswith(_SECRET_PREFIX):
                where = "mcp" if section is config.mcp else "governance"
                refs.setdefault(ref.removeprefix(_SECRET_PREFIX), []).append(where)
    return refs


def decode_secret_data(ref: KubeSourceRef, data: Mapping[str, str]) -> dict[str, str]:
    """Base64-decode a Secret's ``data`` verbatim (no stripping: the operator hashes what it wrote)."""
    decoded: dict[str, str] = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"Secret {ref}: key {key!r} is not base64-encoded UTF-8 text") from None
    return decoded


def evaluate(
    ref: KubeSourceRef, configmap: ObjectData, secret: ObjectData
) -> tuple[GatewayConfig, dict[str, str]]:
    """The config and decoded secrets to serve, from the two observed objects (``None``: absent).

    Raises ``Pending`` while a needed object is absent or the pair is torn (the operator has written
    one and not yet the other), and ``ConfigError`` for a combination that must not be served.
    Messages name fields and keys, never secret values.
    """
    if configmap is None:
        raise Pending(f"waiting for ConfigMap {ref}")
    _check_not_torn(ref, configmap, secret)
    text = configmap.data.get(CONFIG_KEY)
    if text is None:
        raise ConfigError(f"ConfigMap {ref}: no {CONFIG_KEY!r} key")
    config = load_config_text(text, source=f"ConfigMap {ref}")
    refs = secret_refs(config)
    if secret is None:
        if refs:
            raise Pending(f"waiting for Secret {ref} (the config references {', '.join(sorted(refs))})")
        return config, {}
    secrets = decode_secret_data(ref, secret.data)
    problems = [
        f"key {key!r} is {'empty' if key in secrets else 'missing'} (used by {', '.join(users)})"
        for key, users in sorted(refs.items())
        if not secrets.get(key)
    ]
    if problems:
        raise ConfigError(f"Secret {ref}: {'; '.join(problems)}")
    return config, secrets


def _check_not_torn(ref: KubeSourceRef, configmap: ObservedObject, secret: ObjectData) -> None:
    """Wait while the operator's two writes disagree, instead of rejecting or serving a mix of them.

    Without this, a render that adds a key to both objects shows the new config with the old
    Secret for a moment: a spurious "key missing" rejection, or an intermediate revision served.
    Objects without the annotation (written by hand) are not checked.
    """
    config_revision = configmap.annotations.get(REVISION_ANNOTATION)
    secret_revision = secret.annotations.get(REVISION_ANNOTATION) if secret is not None else None
    if config_revision and secret_revision and config_revision != secret_revision:
        raise MidUpdate(
            f"waiting for ConfigMap and Secret {ref} to agree "
            f"(revision {config_revision} vs {secret_revision})"
        )


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with every secret value masked: for messages that came from code we do not own."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


class KubeConfigSource:
    """Watches ConfigMap+Secret ``ref`` and hands each new valid combination to ``on_config``.

    ``last_error``: the last rejection (invalid config, missing Secret key, failed apply), cleared
    once the current objects are valid again. ``pending``: what is being waited for, if anything.
    ``applied_revision``: the served revision last handed to ``on_config``.

    One-shot: ``start()`` once, ``stop()`` once (or use ``async with``). A failed ``on_config`` is
    not retried for the same objects; the next change to either object is evaluated afresh.
    """

    def __init__(
        self,
        ref: KubeSourceRef,
        on_config: OnConfig,
        *,
        on_error: OnError | None = None,
        api_client_factory: ApiClientFactory = load_api_client,
        watch_settings: WatchSettings | None = None,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.ref = ref
        self.last_error: str | None = None
        self.pending: str | None = None
        self.applied_revision: str | None = None
        self._on_config = on_config
        self._on_error = on_error
        self._api_client_factory = api_client_factory
        self._settings = watch_settings or WatchSettings()
        self._stop_timeout_s = stop_timeout_s
        self._observed: dict[str, ObjectData] = {}
        self._evaluated: tuple[ObjectData, ObjectData] | None = None
        self._changed = asyncio.Event()
        self._applied = asyncio.Event()
        self._stopping = threading.Event()
        self._watchers: list[ObjectWatcher] = []
        self._threads: list[threading.Thread] = []
        self._task: asyncio.Task[None] | None = None
        self._api_client: Any = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load credentials (``ConfigError`` if there are none), then start both watches."""
        if self._task is not None:
            raise RuntimeError(f"kube source {self.ref} already started")
        loop = asyncio.get_running_loop()
        # In a thread: reading credentials is file I/O, and the client's first CoreV1Api takes
        # seconds of imports that must not stall a loop that may already be serving requests.
        self._api_client, core = await asyncio.to_thread(self._connect)
        self._task = asyncio.create_task(self._apply_loop(), name=f"asbru-kube-source {self.ref}")
        for kind, list_function in (
            (_CONFIGMAP, core.list_namespaced_config_map),
            (_SECRET, core.list_namespaced_secret),
        ):
            self._start_watcher(loop, kind, list_function)
        log.info("watching ConfigMap and Secret %s", self.ref)

    def _connect(self) -> tuple[Any, Any]:
        api_client = self._api_client_factory()
        return api_client, kubernetes.client.CoreV1Api(api_client)

    def _start_watcher(self, loop: asyncio.AbstractEventLoop, kind: str, list_function: Any) -> None:
        def emit(data: ObjectData) -> None:  # runs in the watch thread
            try:
                loop.call_soon_threadsafe(self._observe, kind, data)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                self._stopping.set()

        watcher = ObjectWatcher(
            kind=kind,
            list_function=list_function,
            namespace=self.ref.namespace,
            name=self.ref.name,
            emit=emit,
            stopping=self._stopping,
            settings=self._settings,
        )
        thread = threading.Thread(target=watcher.run, name=f"asbru-kube-watch {kind} {self.ref}", daemon=True)
        self._watchers.append(watcher)
        self._threads.append(thread)
        thread.start()

    async def first_applied(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bool, not a raise
        """Wait until a first valid config was handed to ``on_config``; ``False`` on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._applied.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop watching: unblock and join the threads, end the apply task, close the client."""
        self._stopping.set()
        for watcher in self._watchers:
            watcher.interrupt()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])
        if self._threads:
            await asyncio.to_thread(self._join_threads)
        if self._api_client is not None and not any(thread.is_alive() for thread in self._threads):
            self._api_client.close()
            self._api_client = None

    def _join_threads(self) -> None:
        """Bounded: a thread stuck in a request to a dead API server is left behind (a daemon)."""
        deadline = time.monotonic() + self._stop_timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s; leaving it", thread.name, self._stop_timeout_s)

    def _observe(self, kind: str, data: ObjectData) -> None:
        """On the loop: record a watch observation and wake the apply task."""
        self._observed[kind] = data
        self._changed.set()

    async def _apply_loop(self) -> None:
        """The one place ``on_config`` is called from: sequential, always on the newest state."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._reconcile()
            except Exception:  # a bug here must not end config updates for the pod's lifetime
                log.exception("kube source %s: evaluating the config failed", self.ref)

    async def _reconcile(self) -> None:
        if _CONFIGMAP not in self._observed or _SECRET not in self._observed:
            return  # wait until both were listed once: absence is known only then
        current = (self._observed[_CONFIGMAP], self._observed[_SECRET])
        if current == self._evaluated:
            return  # a replay after a reconnect, or a metadata-only change
        self._evaluated = current
        try:
            config, secrets = evaluate(self.ref, *current)
        except Pending as pending:
            self._wait_for(str(pending), routine=pending.routine)
            return
        except ConfigError as error:
            self._reject(str(error), _values_to_mask(current[1]), _annotated(current[0]))
            return
        self.pending = None
        await self._apply(config, secrets, _annotated(current[0]))

    async def _apply(self, config: GatewayConfig, secrets: dict[str, str], annotated: str | None) -> None:
        revision = served_revision(config.revision, secrets)
        if revision != self.applied_revision:
            try:
                await self._on_config(config, MappingProxyType(secrets))
            except Exception as error:  # the caller refused it: report it, keep the last good one
                message = f"applying revision {revision} failed: {error}"
                self._reject(message, secrets, annotated or revision, counted=True)
                return
            log.info("applied config from %s: revision %s", self.ref, revision)
            self.applied_revision = revision
            self._applied.set()
        self.last_error = None

    def _wait_for(self, reason: str, *, routine: bool) -> None:
        if reason == self.pending:
            return
        self.pending = reason
        if self.applied_revision is None or routine:
            log.info("%s", reason)
        else:
            log.warning("%s; still serving revision %s", reason, self.applied_revision)

    def _reject(
        self, reason: str, secrets: Mapping[str, str], revision: str | None, *, counted: bool = False
    ) -> None:
        reason = redact(reason, secrets)
        self.last_error = reason
        keeping = self.applied_revision or "none yet"
        log.warning("rejected config from %s (serving revision: %s): %s", self.ref, keeping, reason)
        if self._on_error is not None:
            try:
                self._on_error(reason, revision, counted=counted)
            except Exception:
                log.exception("kube source %s: on_error callback failed", self.ref)


def _annotated(configmap: ObjectData) -> str | None:
    """The served revision the operator annotated the ConfigMap with (what it compares pods to)."""
    return configmap.annotations.get(REVISION_ANNOTATION) if configmap is not None else None


def _values_to_mask(secret: ObjectData) -> dict[str, str]:
    """A Secret's values to mask in messages: as served (base64) and decoded where decodable."""
    values: dict[str, str] = {}
    for key, value in (secret.data if secret is not None else {}).items():
        values[f"{key}.base64"] = value
        try:
            values[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return values
