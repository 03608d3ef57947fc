"""A config file as a live source: applied at start, re-applied on change and on SIGHUP.

Changes are seen through ``watchfiles`` (inotify; debounced, so an editor's write-rename-chmod
is one reload). What is watched: the config file and every ``file:`` secret it references, each
through its own directory, *not* recursively, with a filter that lets only those files' events
through: a config in a busy directory (a home folder, ``/tmp``) costs nothing when unrelated files
change, and a rotated key file is a reload (its contents are part of the served revision). The
callback applies the config; if it raises ``ConfigError`` the error is logged and the gateway keeps
the last good config. A file that is invalid at start-up fails the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import watchfiles

from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.loader import load_config_file
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import file_refs

log = logging.getLogger(__name__)
# watchfiles logs every batch of changes at INFO; our own line says what matters (the reload).
logging.getLogger("watchfiles.main").setLevel(logging.WARNING)

ApplyConfig = Callable[[GatewayConfig], Awaitable[object]]
RejectConfig = Callable[[str, str | None], None]
"""Told of a file that does not load (it never reached ``apply``): reason, and no revision."""


class FileConfigSource:
    def __init__(
        self,
        path: str | Path,
        apply: ApplyConfig,
        *,
        watch: bool = True,
        on_reject: RejectConfig | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self._apply = apply
        self._on_reject = on_reject
        self._watch = watch
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._watched: frozenset[Path] = frozenset()
        self.last_error: str | None = None

    async def start(self) -> None:
        """Apply the file once (errors propagate), then watch it and listen for SIGHUP."""
        config = load_config_file(self.path)
        await self._apply(config)
        if self._watch:
            self._rewatch(config)

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload)
        except (RuntimeError, ValueError, NotImplementedError):
            log.debug("SIGHUP reload not available (not the main thread)")

    def request_reload(self) -> None:
        asyncio.get_running_loop().create_task(self.reload(), name="config-reload")

    async def reload(self) -> bool:
        """Load and apply the file now; False (and ``last_error``) if it was rejected."""
        try:
            config = load_config_file(self.path)
        except ConfigError as error:
            self.last_error = error.message
            log.error("config %s rejected, keeping the last good one: %s", self.path, error.message)
            if self._on_reject is not None:
                self._on_reject(error.message, None)  # it never reached apply: counted there
            return False
        try:
            await self._apply(config)
        except ConfigError as error:  # apply counted it and recorded why
            self.last_error = error.message
            log.error("config %s rejected, keeping the last good one: %s", self.path, error.message)
            return False
        self.last_error = None
        if self._watch:
            self._rewatch(config)
        return True

    def _rewatch(self, config: GatewayConfig) -> None:
        """Watch the config file and the secret files this config references (restarted if they moved)."""
        wanted = frozenset({self.path, *(Path(path).resolve() for path in file_refs(config.secret_refs()))})
        if wanted == self._watched and self._task is not None:
            return
        self._watched = wanted
        previous, self._stop = (self._task, self._stop), asyncio.Event()
        if previous[0] is not None:
            previous[1].set()
        self._task = asyncio.get_running_loop().create_task(
            self._watch_files(wanted, self._stop), name="config-watch"
        )

    async def _watch_files(self, files: frozenset[Path], stop: asyncio.Event) -> None:
        # Watch directories: editors and ConfigMap mounts replace a file rather than write it.
        directories = sorted({str(path.parent) for path in files})
        names = {str(path) for path in files}

        def ours(_: watchfiles.Change, changed: str) -> bool:
            return str(Path(changed).resolve()) in names or changed in names

        async for _ in watchfiles.awatch(
            *directories,
            watch_filter=ours,
            recursive=False,
            stop_event=stop,
            debounce=100,
            step=50,
            rust_timeout=60_000,
        ):
            await self.reload()

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._task is not None:
            await self._task
