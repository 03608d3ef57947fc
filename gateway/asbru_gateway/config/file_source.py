"""A config file as a live source: applied at start, re-applied on change and on SIGHUP.

Changes are seen through ``watchfiles`` (inotify; debounced, so an editor's write-rename-chmod
is one reload). The callback applies the config; if it raises ``ConfigError`` the error is logged
and the gateway keeps the last good config. A file that is invalid at start-up fails the start.
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

log = logging.getLogger(__name__)

ApplyConfig = Callable[[GatewayConfig], Awaitable[object]]


class FileConfigSource:
    def __init__(self, path: str | Path, apply: ApplyConfig, *, watch: bool = True) -> None:
        self.path = Path(path).resolve()
        self._apply = apply
        self._watch = watch
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.last_error: str | None = None

    async def start(self) -> None:
        """Apply the file once (errors propagate), then watch it and listen for SIGHUP."""
        await self._apply(load_config_file(self.path))
        if self._watch:
            self._task = asyncio.get_running_loop().create_task(self._watch_file(), name="config-watch")
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload)
        except (RuntimeError, ValueError, NotImplementedError):
            log.debug("SIGHUP reload not available (not the main thread)")

    def request_reload(self) -> None:
        asyncio.get_running_loop().create_task(self.reload(), name="config-reload")

    async def reload(self) -> bool:
        """Load and apply the file now; False (and ``last_error``) if it was rejected."""
        try:
            await self._apply(load_config_file(self.path))
        except ConfigError as error:
            self.last_error = error.message
            log.error("config %s rejected, keeping the last good one: %s", self.path, error.message)
            return False
        self.last_error = None
        return True

    async def _watch_file(self) -> None:
        # Watch the directory: editors and ConfigMap mounts replace the file rather than write it.
        async for changes in watchfiles.awatch(
            self.path.parent, stop_event=self._stop, debounce=50, step=20, rust_timeout=1000
        ):
            if self._concerns_us(changes):
                await self.reload()

    def _concerns_us(self, changes: set[tuple[watchfiles.Change, str]]) -> bool:
        return any(Path(changed).resolve() == self.path for _, changed in changes)

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._task is not None:
            await self._task
