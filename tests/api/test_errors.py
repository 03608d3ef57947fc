"""Every way a client request can go wrong, over raw HTTP: exact status, exact OpenAI error shape.

Clients (the OpenAI SDKs, LangChain, curl scripts) branch on the status and read
``error.message/type/code/param``; all four keys must be present on every error, and every
response carries ``x-request-id`` so a failure can be found in the gateway's log.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from tests.conftest import TEST_KEYS
from tests.fakes import openai as fake_openai
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway

MAX_BODY = 2048
WAIT_S = 10.0
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
USER = [{"role": "user", "content": "hi"}]


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(upstream_url: str) -> dict[str, Any]:
    openai_provider = fake_openai.provider_config(upstream_url)
    return {
        "server": {"max_body_bytes": MAX_BODY},
        "providers": [
            {"name": "echo", "type": "echo", "models": ["echo"]},
            openai_provider,
            {
                "name": "claude",
                "type": "anthropic",
                "base_url": f"{upstream_url}/v1",
                "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_ANTHROPIC_KEY"}],
            },
            {
                **fake_openai.provider_config(f"http://127.0.0.1:{_closed_port()}", "dead"),
                "network": {"max_retries": 0, "connect_timeout_s": 2},
            },
            {
                **fake_openai.provider_config(upstream_url, "sluggish"),
                "network": {"max_retries": 0, "request_timeout_s": 0.3},
            },
            {
                **fake_openai.provider_config(upstream_url, "tight"),
                "network": {"max_retries": 0, "request_timeout_s": 3},
                "pool": {"concurrency": 1, "queue_size": 0, "overflow": "reject"},
            },
        ],
        "routes": [{"name": "smart", "targets": [{"provider": "openai", "model": "gpt-4o"}]}],
        "plugins": [{"name": "telemetry", "type": "telemetry", "order": -100}],
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Recorder]]:
    """One fake OpenAI upstream for the module (its recorder is emptied before each test)."""
    recorder = Recorder()
    app = fake_openai.make_app(recorder)
    app.on_cleanup.append(_cancel_leftover_handlers)
    with serve_in_thread(app) as url:
        yield url, recorder


async def _cancel_leftover_handlers(_: web.Application) -> None:
    """Handlers of ``hang``/``slow-*`` whose client (the gateway) gave up still sleep: end them."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


@pytest.fixture(scope="module")
def gateway(upstream: tuple[str, Recorder]) -> Iterator[RunningGateway]:
    """One gateway for the module: every test here only reads, so they can share it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with run_gateway(_config(upstream[0])) as running:
            yield running


@pytest.fixture
def openai_upstream(upstream: tuple[str, Recorder]) -> tuple[str, Recorder]:
    upstream[1].requests.clear()
    return upstream


@pytest.fixture
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=20) as client:
        yield client


def assert_error(
    response: httpx.Response,
    status: int,
    *,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """Exact status, the four-key OpenAI error envelope, a JSON content type and a request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == type_
    assert error["code"] == code
    assert error["param"] == param
    if message is not None:
        assert error["message"] == message
    return error


def post_raw(http: httpx.Client, path: str, content: bytes) -> httpx.Response:
    return http.post(path, content=content, headers={"content-type": "application/json"})


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"model": "echo/x", "messages": [', b"\xff\xfe", b"nul"],
    ids=["garbage", "truncated", "binary", "bare-word"],
)
def test_invalid_json_is_400(http: httpx.Client, content: bytes) -> None:
    error = assert_error(post_raw(http, CHAT, content), 400, type_="invalid_request_error")
    assert "JSON" in error["message"]


@pytest.mark.parametrize("content", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_body_that_is_not_an_object_is_400(http: httpx.Client, content: bytes) -> None:
    error = assert_error(post_raw(http, CHAT, content), 400, type_="invalid_request_error")
    assert "object" in error["message"]


@pytest.mark.parametrize("path", [CHAT, EMBEDDINGS])
def test_empty_body_is_400(http: httpx.Client, path: str) -> None:
    error = assert_error(post_raw(http, path, b""), 400, type_="invalid_request_error")
    assert "empty" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": USER},
        {"model": "", "messages": USER},
        {"model": 5, "messages": USER},
        {"model": None, "messages": USER},
        {"model": ["echo/x"], "messages": USER},
    ],
    ids=["missing", "empty", "number", "null", "list"],
)
def test_bad_model_is_400_naming_model(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(http.post(CHAT, json=body), 400, type_="invalid_request_error", param="model")


def test_bad_model_on_embeddings_is_400_naming_model(http: httpx.Client) -> None:
    assert_error(
        http.post(EMBEDDINGS, json={"input": "x"}), 400, type_="invalid_request_error", param="model"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"model": "echo/x"},
        {"model": "echo/x", "messages": []},
        {"model": "echo/x", "messages": "hi"},
        {"model": "echo/x", "messages": {"role": "user", "content": "hi"}},
        {"model": "echo/x", "messages": None},
        {"model": "echo/x", "messages": ["hi"]},
    ],
    ids=["missing", "empty", "string", "object", "null", "non-object-item"],
)
def test_bad_messages_is_400_naming_messages(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(http.post(CHAT, json=body), 400, type_="invalid_request_error", param="messages")


@pytest.mark.parametrize("stream", ["yes", 1, 0, "false", {}, []])
def test_stream_that_is_not_a_bool_is_400(http: httpx.Client, stream: Any) -> None:
    body = {"model": "echo/x", "messages": USER, "stream": stream}
    assert_error(http.post(CHAT, json=body), 400, type_="invalid_request_error", param="stream")


def test_stream_false_and_null_are_accepted(http: httpx.Client) -> None:
    for stream in (False, None):
        response = http.post(CHAT, json={"model": "echo/x", "messages": USER, "stream": stream})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "hi"


@pytest.mark.parametrize("input_", [None, "", []], ids=["missing", "empty-string", "empty-list"])
def test_embeddings_without_input_is_400(http: httpx.Client, input_: Any) -> None:
    body: dict[str, Any] = {"model": "openai/text-embedding-3-small"}
    if input_ is not None:
        body["input"] = input_
    assert_error(http.post(EMBEDDINGS, json=body), 400, type_="invalid_request_error", param="input")


# --- unknown models, paths and methods ----------------------------------------------------------


@pytest.mark.parametrize("model", ["no-such-route", "nope/gpt-4o", "echo", "echo/", "/x", "Smart"])
def test_unknown_model_is_404_model_not_found(
    http: httpx.Client, model: str, openai_upstream: tuple[str, Recorder]
) -> None:
    error = assert_error(
        http.post(CHAT, json={"model": model, "messages": USER}),
        404,
        type_="invalid_request_error",
        code="model_not_found",
        param="model",
    )
    assert repr(model) in error["message"]
    assert openai_upstream[1].requests == []


def test_unknown_provider_prefix_on_embeddings_is_404(http: httpx.Client) -> None:
    assert_error(
        http.post(EMBEDDINGS, json={"model": "nope/e", "input": "x"}),
        404,
        type_="invalid_request_error",
        code="model_not_found",
        param="model",
    )


def test_unknown_fallback_model_is_404_naming_the_fallback(http: httpx.Client) -> None:
    body = {"model": "echo/x", "messages": USER, "fallbacks": ["echo/y", "nope/z"]}
    error = assert_error(
        http.post(CHAT, json=body),
        404,
        type_="invalid_request_error",
        code="model_not_found",
        param="fallbacks[1]",
    )
    assert "nope/z" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nothing"), ("POST", "/v1/audio/speech"), ("GET", "/"), ("POST", "/v1/chat/completions/")],
)
def test_unknown_path_is_404(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json={"model": "echo/x", "messages": USER})
    error = assert_error(response, 404, type_="invalid_request_error", code="not_found")
    assert path in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", CHAT, "POST"),
        ("PUT", EMBEDDINGS, "POST"),
        ("DELETE", "/chat/completions", "POST"),
        ("POST", "/v1/models", "GET"),
        ("POST", "/healthz", "GET"),
        ("POST", "/metrics", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(http: httpx.Client, method: str, path: str, allow: str) -> None:
    response = http.request(method, path)
    assert_error(response, 405, type_="invalid_request_error", code="method_not_allowed")
    assert response.headers["allow"] == allow


# --- body size limit ----------------------------------------------------------------------------


def _big_body(size: int) -> bytes:
    filler = "x" * size
    return orjson.dumps({"model": "echo/x", "messages": [{"role": "user", "content": filler}]})


def test_body_over_limit_with_content_length_is_413(http: httpx.Client) -> None:
    content = _big_body(MAX_BODY + 100)
    response = post_raw(http, CHAT, content)
    assert response.request.headers["content-length"] == str(len(content))
    error = assert_error(response, 413, type_="invalid_request_error", code="request_too_large")
    assert str(MAX_BODY) in error["message"]


def test_chunked_body_over_limit_is_413(http: httpx.Client) -> None:
    content = _big_body(MAX_BODY + 100)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 512):
            yield content[start : start + 512]

    response = http.post(CHAT, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, type_="invalid_request_error", code="request_too_large")


def test_body_just_under_limit_is_served(http: httpx.Client) -> None:
    content = _big_body(MAX_BODY - 200)
    assert len(content) <= MAX_BODY

    def chunks() -> Iterator[bytes]:
        yield content[:100]
        yield content[100:]

    for body in (content, chunks()):
        response = http.post(CHAT, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"].startswith("xxxx")


# --- providers that cannot or did not answer ----------------------------------------------------


def test_embeddings_on_provider_without_embeddings_is_400(
    http: httpx.Client, openai_upstream: tuple[str, Recorder]
) -> None:
    body = {"model": "claude/claude-3-5-haiku", "input": "hello"}
    error = assert_error(
        http.post(EMBEDDINGS, json=body),
        400,
        type_="invalid_request_error",
        code="unsupported_for_provider",
        param="model",
    )
    assert "claude" in error["message"]
    assert openai_upstream[1].requests == []


@pytest.mark.parametrize(
    ("status", "type_"),
    [
        (500, "server_error"),
        (400, "invalid_request_error"),
        (401, "invalid_request_error"),
        (404, "invalid_request_error"),
        (503, "server_error"),
    ],
)
def test_upstream_error_keeps_status_and_message(
    http: httpx.Client, openai_upstream: tuple[str, Recorder], status: int, type_: str
) -> None:
    response = http.post(CHAT, json={"model": f"openai/error-{status}", "messages": USER})
    assert_error(response, status, type_=type_, message=sc.ERROR_MESSAGE)
    assert len(openai_upstream[1].requests) == 1  # max_retries 0: exactly one attempt


def test_upstream_error_on_a_stream_request_is_a_plain_error_response(http: httpx.Client) -> None:
    body = {"model": "openai/error-500", "messages": USER, "stream": True}
    assert_error(http.post(CHAT, json=body), 500, type_="server_error", message=sc.ERROR_MESSAGE)


def test_upstream_connect_failure_is_502(http: httpx.Client) -> None:
    for stream in (False, True):
        response = http.post(CHAT, json={"model": "dead/gpt-4o", "messages": USER, "stream": stream})
        error = assert_error(response, 502, type_="api_connection_error", code="upstream_unreachable")
        assert "127.0.0.1" not in error["message"]  # never echoes the upstream URL


def test_upstream_timeout_is_504(http: httpx.Client) -> None:
    started = time.monotonic()
    response = http.post(CHAT, json={"model": "sluggish/slow-5000", "messages": USER})
    elapsed = time.monotonic() - started
    assert_error(response, 504, type_="timeout", code="upstream_timeout")
    assert elapsed < 4, f"the 0.3 s request timeout took {elapsed:.1f} s"


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def test_full_pool_is_503_with_retry_after(gateway: RunningGateway, http: httpx.Client) -> None:
    snapshot = gateway.app.gateway.current
    assert snapshot is not None
    runtime = snapshot.pools.get("tight")
    assert runtime is not None
    rejected_before = runtime.pool.rejected
    held: dict[str, httpx.Response] = {}

    def hold() -> None:
        with httpx.Client(base_url=gateway.url, timeout=20) as client:
            held["response"] = client.post(CHAT, json={"model": "tight/hang", "messages": USER})

    holder = threading.Thread(target=hold, name="hold-slot")
    holder.start()
    try:
        _wait_for(lambda: runtime.pool.in_flight == 1, "the first request to take the only slot")
        response = http.post(CHAT, json={"model": "tight/gpt-4o", "messages": USER})
        error = assert_error(response, 503, type_="server_error", code="pool_full")
        assert "tight" in error["message"]
        assert response.headers["retry-after"] == "1"
        # Other providers are untouched by the full pool.
        other = http.post(CHAT, json={"model": "openai/gpt-4o", "messages": USER})
        assert other.status_code == 200
        metrics = http.get("/metrics").text
        assert 'asbru_pool_in_flight{provider="tight"} 1.0' in metrics
        assert f'asbru_pool_rejections_total{{provider="tight"}} {rejected_before + 1:.1f}' in metrics
    finally:
        holder.join(WAIT_S)
    assert not holder.is_alive()
    # The held request ends at the provider's request timeout, and frees its slot.
    assert_error(held["response"], 504, type_="timeout", code="upstream_timeout")
    _wait_for(lambda: runtime.pool.in_flight == 0, "the slot to be released")
    assert http.post(CHAT, json={"model": "tight/gpt-4o", "messages": USER}).status_code == 200


# --- request id and per-request fields ----------------------------------------------------------


def test_client_request_id_is_echoed_on_errors(http: httpx.Client) -> None:
    response = http.post(CHAT, content=b"{", headers={"x-request-id": "req-abc-123"})
    assert response.status_code == 400
    assert response.headers["x-request-id"] == "req-abc-123"
    response = http.get("/nowhere", headers={"x-request-id": "bad id with spaces"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] != "bad id with spaces"
    assert len(response.headers["x-request-id"]) == 24


def test_fallbacks_field_is_not_forwarded_upstream(
    http: httpx.Client, openai_upstream: tuple[str, Recorder]
) -> None:
    body = {"model": "openai/gpt-4o", "messages": USER, "fallbacks": ["echo/x"], "temperature": 0.5}
    response = http.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == sc.TEXT
    (sent,) = openai_upstream[1].requests
    assert "fallbacks" not in sent.json
    assert sent.json["temperature"] == 0.5
    assert sent.json["model"] == "gpt-4o"


def test_fallbacks_field_is_used_when_primary_fails(
    http: httpx.Client, openai_upstream: tuple[str, Recorder]
) -> None:
    body = {"model": "openai/error-500", "messages": USER, "fallbacks": ["echo/x"]}
    response = http.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "hi"
    (sent,) = openai_upstream[1].requests
    assert "fallbacks" not in sent.json


@pytest.mark.parametrize("fallbacks", ["echo/x", [1], ["echo/x"] * 9])
def test_malformed_fallbacks_is_400(http: httpx.Client, fallbacks: Any) -> None:
    body = {"model": "echo/x", "messages": USER, "fallbacks": fallbacks}
    assert_error(http.post(CHAT, json=body), 400, type_="invalid_request_error", param="fallbacks")


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/anthropic/v1/no-such-thing", "anthropic"),
        ("/genai/v1beta/no-such-thing", "gemini"),
        ("/v1/no-such-thing", "openai"),
    ],
)
def test_unknown_paths_answer_in_the_dialect_of_their_prefix(path: str, shape: str) -> None:
    with run_gateway({"providers": [{"name": "echo", "type": "echo"}]}) as gateway:
        response = httpx.post(gateway.url + path, json={})
    assert response.status_code == 404
    body = response.json()
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    elif shape == "gemini":
        assert body["error"]["code"] == 404 and body["error"]["status"] == "NOT_FOUND"
    else:
        assert body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {
                "model": "echo/x",
                "stream": True,
                "stream_options": [1],
                "messages": [{"role": "user", "content": "x"}],
            },
        ),
        ("/v1/chat/completions", {"model": "echo/x", "messages": [{"role": {"x": 1}, "content": "x"}]}),
        ("/v1/chat/completions", {"model": "echo/x", "messages": [{"role": ["user"], "content": "x"}]}),
        (
            "/genai/v1beta/models/echo/x:generateContent",
            {"contents": [{"role": {"x": 1}, "parts": [{"text": "x"}]}]},
        ),
        (
            "/genai/v1beta/models/echo/x:generateContent",
            {"contents": [{"role": ["user"], "parts": [{"text": "x"}]}]},
        ),
    ],
    ids=["echo-stream-options-list", "role-object", "role-array", "gemini-role-object", "gemini-role-array"],
)
def test_bodies_that_used_to_be_500s_are_400s(path: str, body: dict[str, Any]) -> None:
    """Issue 9 defect 8: echo with a non-object ``stream_options``, a message role that is an object
    or an array: every invalid body is a 4xx."""
    with run_gateway({"providers": [{"name": "echo", "type": "echo"}]}) as gateway:
        response = httpx.post(gateway.url + path, json=body)
    assert response.status_code == 400, response.text
