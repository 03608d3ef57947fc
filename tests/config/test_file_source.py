"""The config file source: what it watches, and rotation of keys kept in files.

Issue 9 defect 2: rotating a key kept in a ``file:`` secret never took effect (file rewritten,
SIGHUP, config touched): the old key stayed in use, silently. Issue 6 section 6: the watcher
watched the config's directory recursively, so a config in a busy directory cost CPU and reloads.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
import yaml

from asbru_gateway.app import AppSettings
from asbru_gateway.config.secrets import file_refs, served_revision
from tests.fakes.server import Recorder
from tests.gateway_server import run_gateway
from tests.waiting import eventually, wait_until

HELLO = [{"role": "user", "content": "hi"}]


def _write_config(path: Path, upstream_url: str, key_file: Path, note: str = "") -> None:
    config = {
        "providers": [
            {
                "name": "up",
                "type": "openai",
                "base_url": f"{upstream_url}/v1",
                "keys": [{"name": "k1", "secret": f"file:{key_file}"}],
                "network": {"max_retries": 0},
            }
        ],
        "routes": [{"name": f"chat{note}", "targets": [{"provider": "up", "model": "gpt-x"}]}],
    }
    path.write_text(yaml.safe_dump(config))


def _keys_seen(recorder: Recorder) -> list[str]:
    return [r.headers.get("Authorization", "") for r in recorder.requests]


def test_a_rotated_key_file_is_used_without_a_restart(
    tmp_path: Path, openai_upstream: tuple[str, Recorder]
) -> None:
    url, recorder = openai_upstream
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    key_file = secrets / "openai"
    key_file.write_text("sk-first-0123456789\n")
    config = tmp_path / "asbru.yaml"
    _write_config(config, url, key_file)
    with run_gateway(settings=AppSettings(config_path=str(config), shutdown_drain_s=1)) as gateway:
        body = {"model": "chat", "messages": HELLO}
        assert httpx.post(gateway.url + "/v1/chat/completions", json=body).status_code == 200
        revision = httpx.get(gateway.url + "/readyz").json()["revision"]
        key_file.write_text("sk-second-9876543210\n")  # the file is rewritten, nothing else changes

        def rotated() -> bool:
            httpx.post(gateway.url + "/v1/chat/completions", json=body)
            return _keys_seen(recorder)[-1] == "Bearer sk-second-9876543210"

        wait_until(rotated, "the new key is used")
        assert httpx.get(gateway.url + "/readyz").json()["revision"] != revision  # a rotation is a revision
        metrics = httpx.get(gateway.url + "/metrics").text
    assert "sk-second" not in metrics and "sk-first" not in metrics


def test_the_served_revision_covers_referenced_file_contents(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("one")
    first = served_revision("abc", {}, [str(key)])
    key.write_text("two")
    assert served_revision("abc", {}, [str(key)]) != first
    assert served_revision("abc", {}) == "abc"  # no files, no Secret: the config's own hash
    assert file_refs(["env:X", f"file:{key}", "secret:y", f"file:{key}"]) == [str(key)]


async def test_a_config_in_a_busy_directory_reloads_only_for_its_own_files(
    tmp_path: Path, openai_upstream: tuple[str, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = openai_upstream
    key_file = tmp_path / "key"
    key_file.write_text("sk-busy-0123456789")
    config = tmp_path / "asbru.yaml"
    _write_config(config, url, key_file)
    with (
        caplog.at_level(logging.INFO),
        run_gateway(settings=AppSettings(config_path=str(config), shutdown_drain_s=1)) as gateway,
    ):
        caplog.clear()
        (tmp_path / "nested").mkdir()
        for i in range(50):  # unrelated churn, in the directory and below it
            (tmp_path / f"scratch-{i}.txt").write_text(str(i))
            (tmp_path / "nested" / f"asbru-{i}.yaml").write_text(str(i))
        await asyncio.sleep(0)  # yield only; the real wait is the condition below
        _write_config(config, url, key_file, note="-v2")
        async with httpx.AsyncClient(base_url=gateway.url) as client:

            async def reloaded() -> bool:
                models = (await client.get("/v1/models")).json()["data"]
                return {m["id"] for m in models} == {"chat-v2"}

            await eventually(reloaded, timeout_s=10)
    applied = [r for r in caplog.records if "applied" in r.getMessage()]
    assert len(applied) == 1, [r.getMessage() for r in applied]
    assert not [r for r in caplog.records if r.name.startswith("watchfiles")]


def test_every_rejected_reload_is_counted_and_reported(
    tmp_path: Path, openai_upstream: tuple[str, Recorder]
) -> None:
    """Issue 9 defect 9: ``asbru_config_reloads_total{result="rejected"}`` missed 7 of 9 rejections
    (a file that did not parse never reached the gateway's ``apply``, where the count was)."""
    url, _ = openai_upstream
    key_file = tmp_path / "key"
    key_file.write_text("sk-count-0123456789")
    config = tmp_path / "asbru.yaml"
    _write_config(config, url, key_file)
    broken = [
        "providers: [unclosed\n",  # not YAML
        "providers: [{name: up, type: openai, kees: []}]\n",  # a typo'd field
        "providers: [{name: up, type: no-such-type}]\n",  # valid shape, refused when built
        "schemaVersion: asbru.dev/v9\n",  # another major version
    ]
    with run_gateway(settings=AppSettings(config_path=str(config), watch_config=False)) as gateway:

        def rejected() -> float:
            for line in httpx.get(gateway.url + "/metrics").text.splitlines():
                if line.startswith('asbru_config_reloads_total{result="rejected"}'):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        source = gateway.app.file_source
        assert source is not None
        before = rejected()
        for number, text in enumerate(broken, start=1):
            config.write_text(text)
            assert not gateway.call(source.reload())
            assert rejected() - before == number
            assert httpx.get(gateway.url + "/readyz").json()["status"] == "ready"  # the last good one
