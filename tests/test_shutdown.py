"""SIGTERM: stop taking new connections, let in-flight streams finish, then exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "gateway exited during start-up"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a subprocess's port: there is no event to wait on
    raise AssertionError("gateway not ready in time")


def test_sigterm_drains_a_stream_in_flight_then_exits(tmp_path: Path) -> None:
    config = tmp_path / "asbru.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "providers": [{"name": "echo", "type": "echo", "options": {"chunk_delay_ms": 100}}],
            }
        )
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asbru_gateway.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--shutdown-drain",
            "10",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, process)
        body = {
            "model": "echo/x",
            "stream": True,
            "messages": [{"role": "user", "content": "one two three four five six seven eight"}],
        }
        with (
            httpx.Client(base_url=url, timeout=20) as client,
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            process.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"  # the stream in flight finished
        assert len(rest) >= 8
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly: the conventional
        # "terminated by SIGTERM" status, after the drain.
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        output = process.stdout.read().decode() if process.stdout else ""
        assert "Application shutdown complete" in output
        with httpx.Client(timeout=2) as client:
            try:
                client.get(url + "/healthz")
                raise AssertionError("gateway still accepts connections after SIGTERM")
            except httpx.ConnectError:
                pass
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
