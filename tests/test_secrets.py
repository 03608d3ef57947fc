"""An API key never leaves the gateway except in the upstream request's auth header.

Not in a response (success or error, even when the upstream quotes the key back), not in a log
line at any level, not in ``/metrics`` or ``/v1/models``, not in a ``repr``, not in a config error.
Keys are supplied all three ways a config can reference them: ``env:``, ``file:`` and ``secret:``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from asbru_gateway.config.loader import load_config_text, parse_config
from asbru_gateway.config.secrets import SecretResolver, SecretValue
from asbru_gateway.errors import ConfigError
from asbru_gateway.observability.logging import MASK, RedactingFilter
from tests.conftest import TEST_KEYS
from tests.fakes import openai as fake_openai
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway

ENV_KEY = TEST_KEYS["ASBRU_TEST_OPENAI_KEY"]
MAPPED_KEY = "sk-mapped-secret-5566778899aabbcc"
FILE_KEY = "sk-file-secret-ffeeddccbbaa0099"
PASTED_KEY = "sk-live-PASTEDKEY-1234567890abcdef"
ALL_KEYS = (ENV_KEY, MAPPED_KEY, FILE_KEY, TEST_KEYS["ASBRU_TEST_ANTHROPIC_KEY"])
USER = [{"role": "user", "content": "hi"}]


def assert_no_key(text: str, where: str) -> None:
    for key in (*ALL_KEYS, PASTED_KEY):
        assert key not in text, f"an API key appears in {where}"
        assert key[4:] not in text, f"most of an API key appears in {where}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _cancel_leftover_handlers(_: web.Application) -> None:
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@pytest.fixture
def upstream() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    app = fake_openai.make_app(recorder)
    app.on_cleanup.append(_cancel_leftover_handlers)
    with serve_in_thread(app) as url:
        yield url, recorder


def _provider(url: str, name: str, secret: str, **extra: Any) -> dict[str, Any]:
    return {**fake_openai.provider_config(url, name), "keys": [{"name": "k1", "secret": secret}], **extra}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "openai-key"
    path.write_text(FILE_KEY + "\n", encoding="utf-8")
    return path


@pytest.fixture
def gateway(
    upstream: tuple[str, Recorder], key_file: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[RunningGateway]:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger, every level, from every thread
    url = upstream[0]
    config = {
        "providers": [
            {"name": "echo", "type": "echo", "models": ["echo"]},
            _provider(url, "by-env", "env:ASBRU_TEST_OPENAI_KEY", models=["gpt-4o"]),
            _provider(url, "by-secret", "secret:openai-key"),
            _provider(url, "by-file", f"file:{key_file}"),
            _provider(f"http://127.0.0.1:{_closed_port()}", "dead", "env:ASBRU_TEST_OPENAI_KEY"),
            _provider(
                url, "sluggish", "secret:openai-key", network={"max_retries": 0, "request_timeout_s": 0.2}
            ),
            {
                "name": "claude",
                "type": "anthropic",
                "base_url": f"{url}/v1",
                "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_ANTHROPIC_KEY"}],
            },
        ],
        "routes": [{"name": "smart", "targets": [{"provider": "by-env", "model": "gpt-4o"}]}],
        "plugins": [{"name": "telemetry", "type": "telemetry", "order": -100}],
    }
    with run_gateway() as running:
        running.apply(config, secrets={"openai-key": MAPPED_KEY})
        yield running


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for when in ("setup", "call"):
        for record in caplog.get_records(when):
            lines.append(record.getMessage())
            if record.exc_info:
                lines.append(logging.Formatter().formatException(record.exc_info))
            if record.exc_text:
                lines.append(record.exc_text)
            lines.append(repr(record.args))
    return "\n".join(lines)


def test_key_is_sent_upstream_but_never_shown(
    gateway: RunningGateway,
    upstream: tuple[str, Recorder],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []
    with httpx.Client(base_url=gateway.url, timeout=20) as http:

        def call(path: str, body: dict[str, Any], status: int) -> httpx.Response:
            response = http.post(path, json=body)
            assert response.status_code == status, response.text
            seen.append(response.text)
            seen.append(repr(response.headers))
            return response

        for provider, key in (("by-env", ENV_KEY), ("by-secret", MAPPED_KEY), ("by-file", FILE_KEY)):
            upstream[1].requests.clear()
            call("/v1/chat/completions", {"model": f"{provider}/gpt-4o", "messages": USER}, 200)
            call(
                "/v1/chat/completions", {"model": f"{provider}/gpt-4o", "messages": USER, "stream": True}, 200
            )
            call("/v1/embeddings", {"model": f"{provider}/e", "input": "x"}, 200)
            # The key did reach the upstream, in its auth header only.
            assert {r.headers["Authorization"] for r in upstream[1].requests} == {f"Bearer {key}"}
            assert all(key.encode() not in r.body for r in upstream[1].requests)

            # The upstream quotes the key back in its error: the gateway masks it.
            for stream in (False, True):
                quoted = call(
                    "/v1/chat/completions",
                    {"model": f"{provider}/echo-key", "messages": USER, "stream": stream},
                    401,
                )
                error = quoted.json()["error"]
                assert error["message"] == f"Incorrect API key provided: {MASK}"
                assert error["type"] == "authentication_error"
                assert error["code"] == "invalid_api_key"
            call("/v1/chat/completions", {"model": f"{provider}/error-500", "messages": USER}, 500)

        call("/v1/chat/completions", {"model": "smart", "messages": USER}, 200)
        call("/v1/chat/completions", {"model": "dead/gpt-4o", "messages": USER}, 502)
        call("/v1/chat/completions", {"model": "sluggish/slow-2000", "messages": USER}, 504)
        call("/v1/chat/completions", {"model": "claude/claude-x", "messages": USER}, 404)
        call("/v1/embeddings", {"model": "claude/claude-x", "input": "x"}, 400)
        call("/v1/chat/completions", {"model": "nope/x", "messages": USER}, 404)

        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert 'asbru_requests_total{model="other",provider="by-env",status="401"}' in metrics.text
        assert_no_key(metrics.text, "/metrics")
        models = http.get("/v1/models")
        assert {m["id"] for m in models.json()["data"]} == {"smart", "echo/echo", "by-env/gpt-4o"}
        assert_no_key(models.text, "/v1/models")
        assert_no_key(http.get("/readyz").text, "/readyz")

    assert_no_key("\n".join(seen), "a response")
    logs = _log_text(caplog)
    assert "config revision" in logs  # the capture works: the gateway's own lines are in it
    assert_no_key(logs, "the log")
    out, err = capfd.readouterr()
    assert_no_key(out + err, "stdout/stderr")


def test_redacting_filter_masks_a_key_a_library_logs(gateway: RunningGateway) -> None:
    """The belt to the braces: a key quoted by someone else's log line or exception is masked."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.some_library")
    logger.addHandler(handler)
    try:
        logger.error("sending Authorization: Bearer %s to %s", MAPPED_KEY, "upstream")
        logger.warning(f"key from a file: {FILE_KEY}")
        try:
            raise RuntimeError(f"header value {ENV_KEY!r} rejected")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "sending Authorization: Bearer *** to upstream" in text
    assert "key from a file: ***" in text
    assert "RuntimeError: header value '***' rejected" in text
    assert_no_key(text, "a filtered log line")


def test_reprs_never_show_a_key(gateway: RunningGateway, key_file: Path) -> None:
    secret = SecretValue(MAPPED_KEY)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret, repr([secret])):  # noqa: UP031
        assert text in {"SecretValue('***')", "[SecretValue('***')]"}
    assert secret.reveal() == MAPPED_KEY

    snapshot = gateway.app.gateway.current
    assert snapshot is not None
    dumps = [
        repr(snapshot),
        str(snapshot.config),
        snapshot.config.canonical_json().decode(),
        snapshot.config.model_dump_json(),
    ]
    for runtime in snapshot.pools:
        dumps.append(repr(runtime.keys))
        dumps.append(repr(runtime.config))
    assert any("env:ASBRU_TEST_OPENAI_KEY" in text for text in dumps)  # references, not values
    resolved = [key.value.reveal() for runtime in snapshot.pools for key in runtime.keys]
    assert {ENV_KEY, MAPPED_KEY, FILE_KEY} <= set(resolved)
    assert_no_key("\n".join(dumps), "a repr")

    resolver = SecretResolver(mapping={"openai-key": MAPPED_KEY}, environ={"K": ENV_KEY})
    assert_no_key(repr(resolver), "the resolver's repr")
    assert resolver.resolve(f"file:{key_file}").reveal() == FILE_KEY


def _config_with(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"providers": [{"name": "p", "type": "openai", "keys": list(keys)}]}


def test_config_errors_never_quote_a_key(
    gateway: RunningGateway, tmp_path: Path, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = gateway.app.gateway.current
    assert before is not None
    good = {"name": "good", "secret": f"file:{key_file}"}

    def rejected(config: dict[str, Any], secrets: dict[str, str] | None = None) -> str:
        with pytest.raises(ConfigError) as raised:
            gateway.apply(config, secrets)
        message = raised.value.message
        assert str(raised.value) == message
        assert_no_key(message, "a config error")
        return message

    # A key whose environment variable is missing: named by reference; the good key is not shown.
    message = rejected(_config_with(good, {"name": "bad", "secret": "env:ASBRU_TEST_NOT_SET"}))
    assert "providers[p].keys[bad].secret" in message and "env:ASBRU_TEST_NOT_SET" in message
    # A secret: key that the mapping lacks, next to one it has.
    message = rejected(
        _config_with({"name": "a", "secret": "secret:present"}, {"name": "b", "secret": "secret:absent"}),
        {"present": MAPPED_KEY},
    )
    assert "secret:absent" in message
    # file: secrets that cannot be used.
    missing = tmp_path / "no-such-key"
    assert str(missing) in rejected(_config_with(good, {"name": "bad", "secret": f"file:{missing}"}))
    blank = _write(tmp_path / "blank", b" \n")
    assert "empty" in rejected(_config_with({"name": "bad", "secret": f"file:{blank}"}))
    rejected(_config_with({"name": "bad", "secret": f"file:{tmp_path}"}))  # a directory
    binary = _write(tmp_path / "binary", b"\xff\xfe" + PASTED_KEY.encode() + b"\x80")
    assert str(binary) in rejected(_config_with({"name": "bad", "secret": f"file:{binary}"}))

    # Nothing of that changed what is served, and the log of it holds no key either.
    assert gateway.app.gateway.current is before
    assert_no_key(_log_text(caplog), "the log")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "text",
    [
        # A key pasted where a reference belongs.
        f"providers:\n- name: p\n  type: openai\n  keys: [{{name: k, secret: {PASTED_KEY}}}]\n",
        json.dumps(
            {"providers": [{"name": "p", "type": "openai", "keys": [{"name": "k", "secret": PASTED_KEY}]}]}
        ),
        # ... as a credential header, or as an unknown field.
        f"providers:\n- name: p\n  type: openai\n  network: {{headers: {{Authorization: {PASTED_KEY}}}}}\n",
        f"providers:\n- name: p\n  type: openai\n  api_key: {PASTED_KEY}\n",
        # ... in a file that is not even valid YAML or JSON.
        f"providers:\n- name: p\n  type: openai\n  keys: [{{name: k, secret: {PASTED_KEY}: x}}]\n",
        f"providers:\n- name: p\n  keys: [{{name: k, secret: '{PASTED_KEY}'\n",
        f'{{"providers": [{{"name": "p", "secret": "{PASTED_KEY}",}}]}}',
        f"providers:\n- name: p\n\ttype: {PASTED_KEY}\n",
    ],
    ids=[
        "yaml-ref",
        "json-ref",
        "header",
        "unknown-field",
        "yaml-syntax",
        "yaml-unclosed",
        "json-syntax",
        "yaml-tab",
    ],
)
def test_config_text_errors_never_quote_a_pasted_key(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, source="gateway.yaml")
    assert raised.value.message.startswith("gateway.yaml: ")
    assert_no_key(str(raised.value), "a config error")


def test_parse_errors_name_the_field_but_not_the_value() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config_with({"name": "k", "secret": PASTED_KEY}))
    assert "providers.0.keys.0.secret" in raised.value.message
    assert_no_key(raised.value.message, "a config error")
