"""SIGTERM: stop taking new connections, let in-flight streams finish, then exit."""

from __future__ import annotations

import json
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


def _start(tmp_path: Path, config: dict[str, object], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    path = tmp_path / "asbru.yaml"
    path.write_text(yaml.safe_dump(config))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asbru_gateway.cli",
            "serve",
            "--config",
            str(path),
            "--port",
            str(port),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, process)
    return process, url


def _stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    process.stdout.close()
    return output


def test_sigterm_past_the_drain_time_ends_streams_with_an_error_event(tmp_path: Path) -> None:
    """Issue 9 defect 7: streams were cut without an error event, with a traceback per stream."""
    config = {"providers": [{"name": "echo", "type": "echo", "options": {"chunk_delay_ms": 400}}]}
    process, url = _start(tmp_path, config, "--shutdown-drain", "1")
    try:
        words = " ".join(f"w{i}" for i in range(40))  # 16 s of stream: far past the 1 s drain
        body = {"model": "echo/x", "stream": True, "messages": [{"role": "user", "content": words}]}
        with (
            httpx.Client(base_url=url, timeout=20) as client,
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            process.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line.startswith("data: ")]
        last = json.loads(rest[-1].removeprefix("data: "))
        assert last["error"]["code"] == "shutting_down"
        assert len(rest) < 20  # it was ended, not finished
    finally:
        output = _stop(process)
    assert "Traceback" not in output


def test_sighup_with_two_workers_reloads_them_without_a_restart(tmp_path: Path) -> None:
    """Issue 9 defect 7: SIGHUP with --workers 2 restarted the workers (and dropped requests)."""
    config = {
        "providers": [{"name": "echo", "type": "echo"}],
        "routes": [{"name": "before", "targets": [{"provider": "echo", "model": "m"}]}],
    }
    process, url = _start(tmp_path, config, "--workers", "2", "--no-watch")
    try:
        pids_before = _worker_pids(process.pid)
        assert len(pids_before) == 2
        config["routes"] = [{"name": "after", "targets": [{"provider": "echo", "model": "m"}]}]
        (tmp_path / "asbru.yaml").write_text(yaml.safe_dump(config))
        process.send_signal(signal.SIGHUP)
        failures = 0
        deadline = time.monotonic() + 20
        seen_after: set[int] = set()
        with httpx.Client(base_url=url, timeout=5) as client:
            while len(seen_after) < 1 and time.monotonic() < deadline:
                models = client.get("/v1/models")
                failures += models.status_code != 200
                if {m["id"] for m in models.json()["data"]} == {"after"}:
                    seen_after.add(1)
            for _ in range(40):  # both workers serve the new config, none restarted
                response = client.post(
                    "/v1/chat/completions",
                    json={"model": "after", "messages": [{"role": "user", "content": "x"}]},
                )
                failures += response.status_code != 200
        assert seen_after and failures == 0
        assert _worker_pids(process.pid) == pids_before
    finally:
        output = _stop(process)
    assert "restarting processes" not in output


def _worker_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {int(pid) for pid in children if _is_python(int(pid))}


def _is_python(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
