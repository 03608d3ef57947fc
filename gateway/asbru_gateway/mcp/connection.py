"""One MCP server connection, owned by the gateway: connect, list tools, watch, reconnect.

A supervisor task holds the SDK's ``Client`` open for as long as the connection lives (the SDK's
context manager must be entered and left in one task); request tasks call tools on it concurrently.
The supervisor:

- connects (stdio: starts the subprocess; HTTP: the first request) in the configured protocol era,
  lists the tools (every page), and marks the connection up;
- re-lists the tools every ``health_interval_s`` (the health check, in both eras: a server that
  changed its tools without telling is seen too), and at once when a call found the connection
  broken or a server said its tools changed; a failed listing, a closed pipe or a crash ends the
  session;
- reconnects with exponential backoff (``backoff_initial_s`` doubling to ``backoff_max_s``, with
  jitter), keeping the last error for the status.

While it is down its tools are not offered, so a request that does not use the server never notices;
a call of one of its tools gets an error result that says why, which the model reads.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from asbru_gateway.config.mcp import McpProtocol, McpServerConfig, McpTransport
from asbru_gateway.mcp.names import exposed_names
from asbru_gateway.mcp.tools import McpTool, ToolOutcome, result_text
from asbru_gateway.observability.logging import redact

log = logging.getLogger(__name__)
# The SDK and its HTTP client log each HTTP exchange at INFO: far too chatty for a gateway.
for _name in ("mcp", "httpx2"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_CLIENT_INFO = mcp_types.Implementation(name="asbru-gateway", version="0.1.0")
_MAX_PAGES = 100
_ERROR_LENGTH = 500


class ServerStatus:
    """What the gateway knows of a server now: for ``/v1/mcp/servers`` and the CR's status."""

    __slots__ = ("connected", "last_error", "protocol_version", "since", "tool_count")

    def __init__(self) -> None:
        self.connected = False
        self.tool_count = 0
        self.last_error: str | None = None
        self.protocol_version: str | None = None
        self.since = time.time()

    def describe(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "tool_count": self.tool_count,
            "last_error": self.last_error,
            "protocol_version": self.protocol_version,
            "since": self.since,
        }


class ServerConnection:
    """A live connection to one server. ``tools`` is replaced (never mutated) on each listing."""

    def __init__(self, config: McpServerConfig, secrets: dict[str, str]) -> None:
        self.config = config
        """The config it was opened with. Only its connection fields matter here; filters, access
        and the call timeout come from the revision that uses it (``hub``)."""
        self.name = config.name
        self._secrets = secrets
        self.tools: tuple[McpTool, ...] = ()
        self.version = 0
        """Bumped whenever ``tools`` or the connected state change (the hub's caches key on it)."""
        self.status = ServerStatus()
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._first = asyncio.Event()
        self._closing = False
        self.on_change: Callable[[], None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"mcp-{self.name}")

    async def wait_first(self, timeout_s: float) -> None:
        """Until the first connection attempt succeeded or failed (at most ``timeout_s``)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._first.wait()
        except TimeoutError:
            return

    async def close(self) -> None:
        """Leave the session (stdio: end the subprocess) and stop reconnecting."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set_down(None)

    # --- calls ------------------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutcome:
        """Run one tool. Never raises for the server's sake: every failure is an error outcome."""
        client = self._client
        if client is None:
            reason = self.status.last_error or "not connected yet"
            return ToolOutcome.failed(
                self.name, tool, "unavailable", f"MCP server {self.name!r} is down: {reason}"
            )
        try:
            async with asyncio.timeout(timeout_s):
                result = await client.call_tool(tool, arguments, read_timeout_seconds=timeout_s)
        except TimeoutError:
            self._kick.set()  # a hung server is checked at once
            return ToolOutcome.failed(
                self.name,
                tool,
                "timeout",
                f"tool {tool!r} on MCP server {self.name!r} timed out after {timeout_s:g} s",
            )
        except MCPError as error:
            if error.code in (mcp_types.CONNECTION_CLOSED, mcp_types.REQUEST_TIMEOUT):
                self._kick.set()
            outcome = "timeout" if error.code == mcp_types.REQUEST_TIMEOUT else "error"
            if error.code == mcp_types.CONNECTION_CLOSED:
                message = f"MCP server {self.name!r} closed the connection during {tool!r}"
            else:
                message = f"MCP server {self.name!r} refused the call of {tool!r}: {_short(error.message)}"
            return ToolOutcome.failed(self.name, tool, outcome, message)
        except Exception as error:  # a broken pipe, an HTTP error, an invalid result
            self._kick.set()
            return ToolOutcome.failed(
                self.name, tool, "error", f"MCP server {self.name!r} failed: {_describe(error)}"
            )
        data = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        is_error = bool(result.is_error)
        return ToolOutcome(
            self.name, tool, is_error, result_text(data), data, "tool_error" if is_error else "ok"
        )

    # --- the supervisor ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        timeouts = self.config.timeouts
        delay = timeouts.backoff_initial_s
        while not self._closing:
            try:
                await self._session()
                delay = timeouts.backoff_initial_s
            except asyncio.CancelledError:
                raise
            except BaseException as error:  # anyio groups, pipe and HTTP errors alike
                if isinstance(error, (KeyboardInterrupt, SystemExit)):
                    raise
                self._set_down(_describe(error))
                log.warning(
                    "MCP server %s: %s; reconnecting in %.1f s", self.name, self.status.last_error, delay
                )
            self._first.set()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, timeouts.backoff_max_s)

    async def _session(self) -> None:
        timeouts = self.config.timeouts
        client = self._new_client()
        async with asyncio.timeout(timeouts.connect_s):
            await client.__aenter__()
        try:
            async with asyncio.timeout(timeouts.connect_s):
                await self._list_tools(client)
            self._client = client
            self.status.protocol_version = client.protocol_version
            self._set_up()
            await self._watch(client)
        finally:
            self._client = None
            await _leave(client)

    async def _watch(self, client: Client) -> None:
        """Re-list every interval, or at once when kicked; return (raise) when the server fails."""
        timeouts = self.config.timeouts
        while True:
            self._kick.clear()
            try:
                async with asyncio.timeout(timeouts.health_interval_s):
                    await self._kick.wait()
            except TimeoutError:
                pass
            async with asyncio.timeout(timeouts.connect_s):
                await self._list_tools(client)  # the health check: ``ping`` is gone from 2026-07-28

    async def _list_tools(self, client: Client) -> None:
        listed: list[Any] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            listed.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        wires = [tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in listed]
        names = exposed_names(self.name, [wire["name"] for wire in wires])
        tools = tuple(McpTool(self.name, wire["name"], names[wire["name"]], wire) for wire in wires)
        if tools != self.tools:
            self.tools = tools
            self.status.tool_count = len(tools)
            self._changed()

    def _new_client(self) -> Client:
        config = self.config
        mode = {McpProtocol.AUTO: "auto", McpProtocol.LEGACY: "legacy"}.get(config.protocol, "2026-07-28")
        if config.transport == McpTransport.STDIO:
            transport: Any = stdio_client(self._stdio_parameters())
        elif config.transport == McpTransport.SSE:
            assert config.url is not None
            transport = sse_client(config.url, headers=self._headers(), timeout=config.timeouts.connect_s)
            mode = "legacy"
        else:
            assert config.url is not None
            http = httpx2.AsyncClient(
                headers=self._headers(),
                timeout=httpx2.Timeout(config.timeouts.connect_s, read=max(config.timeouts.call_s, 300.0)),
            )
            transport = streamable_http_client(config.url, http_client=http)
            transport = _Owning(transport, http)
        return Client(
            transport,
            mode=mode,
            client_info=_CLIENT_INFO,
            cache=None,
            message_handler=self._on_message,
        )

    def _stdio_parameters(self) -> StdioServerParameters:
        config = self.config
        assert config.command is not None
        env = dict(config.env)
        env.update({name: self._secrets[ref] for name, ref in config.secret_env.items()})
        return StdioServerParameters(
            command=resolve_command(config.command), args=list(config.args), env=env, cwd=config.cwd
        )

    def _headers(self) -> dict[str, str]:
        headers = dict(self.config.headers)
        headers.update({name: self._secrets[ref] for name, ref in self.config.secret_headers.items()})
        return headers

    async def _on_message(self, message: IncomingMessage) -> None:
        """A ``tools/list_changed`` notification (2025 era) re-lists at once."""
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._kick.set()
        await asyncio.sleep(0)

    # --- state ------------------------------------------------------------------------------------

    def _set_up(self) -> None:
        status = self.status
        status.connected, status.last_error, status.since = True, None, time.time()
        self._first.set()
        self._changed()
        log.info(
            "MCP server %s connected (%s, %d tools)", self.name, status.protocol_version, len(self.tools)
        )

    def _set_down(self, error: str | None) -> None:
        status = self.status
        was = status.connected
        status.connected = False
        if error is not None:
            status.last_error = error
        if was:
            status.since = time.time()
            self._changed()

    def _changed(self) -> None:
        self.version += 1
        if self.on_change is not None:
            self.on_change()


class _Owning:
    """A transport context that also closes the HTTP client it was given."""

    def __init__(self, transport: Any, http: httpx2.AsyncClient) -> None:
        self._transport = transport
        self._http = http

    async def __aenter__(self) -> Any:
        return await self._transport.__aenter__()

    async def __aexit__(self, *exc: object) -> bool | None:
        try:
            return await self._transport.__aexit__(*exc)  # type: ignore[no-any-return]
        finally:
            await self._http.aclose()


async def _leave(client: Client) -> None:
    """Leave the client's context, never hanging (a subprocess is killed by the SDK if it must be)."""
    try:
        async with asyncio.timeout(10):
            await client.__aexit__(None, None, None)
    except BaseException as error:  # a dying transport may raise anything here
        if isinstance(error, asyncio.CancelledError):
            raise
        log.debug("MCP client close: %s", _describe(error))


def resolve_command(command: str) -> str:
    """``command`` as found on PATH, else beside the gateway's own Python (its venv's ``bin``)."""
    if "/" in command:
        return command
    found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
    return found or command


def _describe(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions[:3])
    if isinstance(error, TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    return _short(f"{type(error).__name__}: {text}" if str(error) else text)


def _short(text: str) -> str:
    text = redact(text)
    return text if len(text) <= _ERROR_LENGTH else text[:_ERROR_LENGTH] + "..."
