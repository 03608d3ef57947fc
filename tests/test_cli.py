"""``asbru`` as users run it: a real process on a real port, stopped with SIGTERM.

Every process started here is bounded by deadlines and killed in a ``finally``; every wait is on a
condition (ready, reloaded, exited) with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from asbru_gateway.config.loader import load_config_text
from asbru_gateway.providers.registry import PROVIDER_TYPES
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder

START_S = 20.0
RELOAD_S = 10.0
STOP_S = 5.0
ASBRU = Path(sys.executable).with_name("asbru")


def _command() -> list[str]:
    """The installed ``asbru`` script if there is one, else the same entry point through ``-m``."""
    return [str(ASBRU)] if ASBRU.exists() else [sys.executable, "-m", "asbru_gateway.cli"]


def _clean_env() -> dict[str, str]:
    """The test's environment without any provider key, base URL or ``ASBRU_*`` setting."""
    provider_vars = {
        var for kind in PROVIDER_TYPES.values() for var in (kind.key_env, kind.base_url_env) if var
    }
    return {
        name: value
        for name, value in os.environ.items()
        if name not in provider_vars and not name.startswith("ASBRU_")
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(condition: Callable[[], bool], what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")
        time.sleep(0.05)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``asbru serve --port P ARGS`` until ready; killed on the way out whatever happened."""
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--shutdown-drain",
                "1",
                *args,
            ],
            env={**_clean_env(), **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        with httpx.Client(timeout=2) as http:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(
                        f"asbru serve exited with {process.returncode}:\n{served.log_text()}"
                    )
                try:
                    return http.get(served.url + "/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            _wait_for(ready, "asbru serve to be ready", START_S, log)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _chat(http: httpx.Client, url: str, model: str, text: str, **extra: Any) -> httpx.Response:
    return http.post(
        url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
    )


def _stream_text(http: httpx.Client, url: str, model: str, text: str) -> str:
    pieces: list[str] = []
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": True}
    with http.stream("POST", url + "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        chunk = orjson.loads(line.removeprefix("data: "))
        pieces.extend(choice["delta"].get("content") or "" for choice in chunk["choices"])
    return "".join(pieces)


def _stop(served: Served) -> None:
    """SIGTERM: a clean exit within a few seconds."""
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    try:
        code = served.process.wait(STOP_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"asbru serve ignored SIGTERM for {STOP_S} s:\n{served.log_text()}") from None
    # uvicorn (>= 0.29) re-raises the SIGTERM it captured once it has shut down cleanly, so the
    # process reports "terminated by SIGTERM" (143 in a shell) rather than 0; both are a clean stop.
    assert code in (0, -signal.SIGTERM), served.log_text()
    assert time.monotonic() - started < STOP_S
    log = served.log_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
    assert "uvicorn.access" not in log  # access_log=False: no line per request


def test_help_lists_the_subcommands() -> None:
    result = subprocess.run(
        [*_command(), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "operator" in result.stdout
    serve_help = subprocess.run(
        [*_command(), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(),
        check=False,
    )
    assert serve_help.returncode == 0, serve_help.stderr
    assert "--config" in serve_help.stdout and "--port" in serve_help.stdout
    missing = subprocess.run(
        _command(),
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(),
        check=False,
    )
    assert missing.returncode == 2 and "serve" in missing.stderr


def test_serve_without_config_answers_echo_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serve(tmp_path) as served, httpx.Client(timeout=10) as http:
        assert http.get(served.url + "/healthz").json() == {"status": "ok"}
        response = _chat(
            http,
            served.url,
            "echo/x",
            "the last one",
            messages=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "the last one"},
            ],
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["message"]["content"] == "the last one"
        assert response.headers.get("x-request-id")
        assert _stream_text(http, served.url, "echo/y", "streamed words here") == "streamed words here"
        # No provider key in the environment: echo is all it serves.
        assert [m["id"] for m in http.get(served.url + "/v1/models").json()["data"]] == ["echo/echo"]
        assert _chat(http, served.url, "openai/gpt-4o", "x").status_code == 404
        _stop(served)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _file_config(model: str, *, concurrency: int = 4) -> str:
    return (
        "schemaVersion: asbru.dev/v1alpha1\n"
        "providers:\n"
        f"  - {{name: local, type: echo, models: [echo], pool: {{concurrency: {concurrency}}}}}\n"
        "routes:\n"
        f"  - {{name: chat, targets: [{{provider: local, model: {model}}}]}}\n"
    )


def test_serve_with_config_file_reloads_on_change_and_keeps_last_good(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    config_file = config_dir / "gateway.yaml"
    _write_atomically(config_file, _file_config("alpha"))

    with serve(tmp_path, "--config", str(config_file)) as served, httpx.Client(timeout=10) as http:

        def served_model() -> str:
            response = _chat(http, served.url, "chat", "hello")
            assert response.status_code == 200, response.text
            return str(response.json()["model"])

        def revision() -> str:
            return str(http.get(served.url + "/readyz").json()["revision"])

        assert served_model() == "alpha"
        assert revision() == load_config_text(_file_config("alpha")).revision
        assert {m["id"] for m in http.get(served.url + "/v1/models").json()["data"]} == {"chat", "local/echo"}
        assert _chat(http, served.url, "nowhere/x", "x").status_code == 404  # only what the file declares

        # An edit (atomic replace, as editors and ConfigMap mounts do) is picked up.
        _write_atomically(config_file, _file_config("beta"))
        _wait_for(lambda: served_model() == "beta", "the edited config to be served", RELOAD_S, served.log)
        good_revision = load_config_text(_file_config("beta")).revision
        assert revision() == good_revision

        # An invalid config is rejected; the last good one keeps serving.
        _write_atomically(config_file, _file_config("gamma", concurrency=0))
        _wait_for(
            lambda: "rejected, keeping the last good one" in served.log_text(),
            "the invalid config to be rejected",
            RELOAD_S,
            served.log,
        )
        assert "providers.0.pool.concurrency" in served.log_text()
        assert served_model() == "beta"
        assert revision() == good_revision
        assert http.get(served.url + "/readyz").status_code == 200

        # ... and so does a file that is not even YAML, without stopping the watcher.
        _write_atomically(config_file, "routes: [\n")
        _wait_for(
            lambda: served.log_text().count("rejected, keeping the last good one") >= 2,
            "the unparsable config to be rejected",
            RELOAD_S,
            served.log,
        )
        _write_atomically(config_file, _file_config("delta"))
        _wait_for(lambda: served_model() == "delta", "a valid config after rejections", RELOAD_S, served.log)
        _stop(served)


def test_sighup_reloads_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "gateway.yaml"
    _write_atomically(config_file, _file_config("alpha"))
    with (
        serve(tmp_path, "--config", str(config_file), "--no-watch") as served,
        httpx.Client(timeout=10) as http,
    ):

        def served_model() -> str:
            return str(_chat(http, served.url, "chat", "hello").json()["model"])

        _write_atomically(config_file, _file_config("beta"))
        assert served_model() == "alpha"  # not watched: nothing changes by itself
        served.process.send_signal(signal.SIGHUP)
        _wait_for(lambda: served_model() == "beta", "the config reloaded on SIGHUP", RELOAD_S, served.log)
        _stop(served)


def test_serve_refuses_to_start_with_an_invalid_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(_file_config("alpha").replace("name: local", "name: Local_Echo"))
    result = subprocess.run(
        [*_command(), "serve", "--port", str(_free_port()), "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=30,
        env=_clean_env(),
        check=False,
    )
    assert result.returncode != 0
    assert "providers.0.name" in result.stdout + result.stderr


def test_serve_adds_openai_from_the_environment(
    tmp_path: Path, openai_upstream: tuple[str, Recorder]
) -> None:
    url, recorder = openai_upstream
    env = {"OPENAI_API_KEY": "sk-cli-test-0123456789", "OPENAI_BASE_URL": f"{url}/v1"}
    with serve(tmp_path, env=env) as served, httpx.Client(timeout=10) as http:
        response = _chat(http, served.url, "openai/gpt-4o-mini", "hi")
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == sc.TEXT
        (sent,) = recorder.requests
        assert sent.headers["Authorization"] == "Bearer sk-cli-test-0123456789"
        assert sent.json["model"] == "gpt-4o-mini"
        assert "sk-cli-test-0123456789" not in served.log_text()
        _stop(served)
