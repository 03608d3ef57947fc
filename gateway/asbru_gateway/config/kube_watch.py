"""List, then watch, one named Kubernetes object from a worker thread (used by ``kube_source``).

Why a thread: the official ``kubernetes`` client is synchronous and a watch is a long blocking
read, so each watched object gets its own daemon thread that hands every observed state to a
callback (which hops onto the event loop). The hot path never waits on it.

Why raw responses (``_preload_content=False``) instead of ``kubernetes.watch.Watch``:

- we want the object's ``data`` exactly as the API serves it (a Secret's base64 values), with no
  model round trip;
- the informer rule for an expired ``resourceVersion`` (410 Gone: list again, then watch from the
  list's version) is ours to apply; ``Watch`` retries once from the stale version, then raises;
- ``interrupt()`` needs the live response to unblock a read at once on shutdown, instead of
  waiting up to the server-side watch timeout.

The API is asked for the one object by ``fieldSelector=metadata.name=NAME`` because the gateway's
Role only grants list/watch on that name; the name is checked again client-side for servers (or
emulators) that ignore the selector.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservedObject:
    """What the config source needs of a watched object: its ``data`` and its annotations."""

    data: Mapping[str, str]
    annotations: Mapping[str, str]


ObjectData = ObservedObject | None
"""The watched object as last observed; ``None`` while it does not exist."""

ListFunction = Callable[..., Any]
"""``CoreV1Api.list_namespaced_config_map`` or ``list_namespaced_secret`` (or a look-alike)."""

_HEALTHY_S = 1.0
"""A list+watch round that lasted this long was healthy: the next failure starts backoff afresh."""


@dataclass(frozen=True)
class WatchSettings:
    """Timeouts and backoff of a watch. Defaults suit a real API server; tests may shorten them."""

    server_timeout_s: int = 240
    """The API server ends each watch after this; we resume from the last resourceVersion."""
    read_timeout_s: float = 300.0
    """No byte for this long means a dead connection (no FIN through a NAT): reconnect."""
    request_timeout_s: float = 15.0
    """Connect timeout of every request, and read timeout of a list."""
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0


class GoneError(Exception):
    """The watch's resourceVersion is too old (410 Gone): relist to get a fresh one."""


class WatchError(Exception):
    """The API ended a watch with an ERROR event other than 410."""


class Backoff:
    """Exponential delay with jitter, capped, so N replicas do not reconnect in lockstep."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._attempt = 0

    def next(self) -> float:
        delay = min(self._max_s, self._initial_s * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    def reset(self) -> None:
        self._attempt = 0


class ObjectWatcher:
    """Keeps ``emit`` told of one object's ``data`` (``None`` when absent) until ``stopping`` is set.

    ``run()`` is the thread's body: list (emits the current state, absent included), watch from the
    list's resourceVersion, resume after a normal end, relist after 410, back off after failures.
    ``emit`` may be called with unchanged data (reconnects replay); the receiver deduplicates.
    """

    def __init__(
        self,
        *,
        kind: str,
        list_function: ListFunction,
        namespace: str,
        name: str,
        emit: Callable[[ObjectData], None],
        stopping: threading.Event,
        settings: WatchSettings,
    ) -> None:
        self.kind = kind
        self._list_function = list_function
        self._namespace = namespace
        self._name = name
        self._emit = emit
        self._stopping = stopping
        self._settings = settings
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._lock = threading.Lock()
        self._response: Any = None
        self._last_failure: str | None = None

    @property
    def _selector(self) -> str:
        return f"metadata.name={self._name}"

    def run(self) -> None:
        """The thread body. Returns only once ``stopping`` is set."""
        version: str | None = None
        while not self._stopping.is_set():
            started = time.monotonic()
            failed = False
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
            except GoneError:
                log.info("%s %s/%s: resourceVersion expired, listing again", *self._what())
                version = None
            except Exception as error:  # any failure: back off and reconnect
                failed = True
                self._report(error)
            if time.monotonic() - started >= _HEALTHY_S:
                self._backoff.reset()
            elif not self._stopping.is_set():
                failed = True  # a round that ends at once is a failure too: do not spin
            if failed:
                self._stopping.wait(self._backoff.next())

    def interrupt(self) -> None:
        """Unblock a read in progress (called from another thread once ``stopping`` is set)."""
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown(response)

    def _what(self) -> tuple[str, str, str]:
        return self.kind, self._namespace, self._name

    def _list(self) -> str | None:
        """Emit the object's current state; return the list's resourceVersion to watch from."""
        response = self._list_function(
            self._namespace,
            field_selector=self._selector,
            _preload_content=False,
            _request_timeout=self._settings.request_timeout_s,
        )
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        items = [item for item in body.get("items") or () if _name_of(item) == self._name]
        self._emit(_data_of(items[0]) if items else None)
        self._last_failure = None
        version = (body.get("metadata") or {}).get("resourceVersion")
        return str(version) if version else None

    def _watch(self, version: str | None) -> str | None:
        """Stream events until the server ends the watch; return the last resourceVersion seen."""
        try:
            response = self._list_function(
                self._namespace,
                field_selector=self._selector,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._settings.server_timeout_s,
                _preload_content=False,
                _request_timeout=(self._settings.request_timeout_s, self._settings.read_timeout_s),
            )
        except Exception as error:
            if getattr(error, "status", None) == 410:
                raise GoneError from None
            raise
        self._hold(response)
        try:
            for line in _lines(response):
                if self._stopping.is_set():
                    break
                version = self._on_event(json.loads(line), version)
        finally:
            self._hold(None)
            response.close()
            response.release_conn()
        return version

    def _hold(self, response: Any) -> None:
        """Publish the live response for ``interrupt()``; close at once if stopping already."""
        with self._lock:
            self._response = response
        if response is not None and self._stopping.is_set():
            _shutdown(response)

    def _on_event(self, event: Mapping[str, Any], version: str | None) -> str | None:
        kind = event.get("type")
        obj: Mapping[str, Any] = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise GoneError
            raise WatchError(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion") or version
        if kind in {"ADDED", "MODIFIED", "DELETED"} and _name_of(obj) == self._name:
            self._emit(None if kind == "DELETED" else _data_of(obj))
            self._last_failure = None
        return version

    def _report(self, error: Exception) -> None:
        """Log a failure; once per distinct message, so an unreachable API does not flood the log."""
        if self._stopping.is_set():
            return
        text = _describe(error)
        level = logging.DEBUG if text == self._last_failure else logging.WARNING
        log.log(level, "%s %s/%s: watch failed, retrying: %s", *self._what(), text)
        self._last_failure = text


def _lines(response: Any) -> Iterator[str]:
    """Newline-delimited JSON events of a chunked watch response, as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line.decode("utf-8")


def _shutdown(response: Any) -> None:
    """Wake a thread blocked reading ``response``: shut its socket down (works for TLS too)."""
    with contextlib.suppress(Exception):
        if hasattr(response, "shutdown"):  # urllib3 >= 2.3
            response.shutdown()
            return
        response.connection.sock.shutdown(socket.SHUT_RDWR)


def _name_of(obj: Mapping[str, Any]) -> str | None:
    name = (obj.get("metadata") or {}).get("name")
    return str(name) if name is not None else None


def _data_of(obj: Mapping[str, Any]) -> ObservedObject:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return ObservedObject(
        data={str(key): str(value) for key, value in (obj.get("data") or {}).items()},
        annotations={str(key): str(value) for key, value in annotations.items()},
    )


def _describe(error: Exception) -> str:
    """A short, secret-free description: API errors by status and reason, others by type and text."""
    status = getattr(error, "status", None)
    if status is None:
        return f"{type(error).__name__}: {error}"
    text = f"HTTP {status} {getattr(error, 'reason', '') or ''}".strip()
    message = _status_message(getattr(error, "body", None))
    return f"{text}: {message}" if message else text


def _status_message(body: Any) -> str | None:
    """The ``message`` of a Kubernetes ``Status`` body (says which verb RBAC refused), if any."""
    try:
        message = json.loads(body).get("message")
    except (TypeError, ValueError, AttributeError):
        return None
    return str(message) if message else None
