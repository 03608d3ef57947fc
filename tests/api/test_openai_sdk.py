"""The gateway through the official ``openai`` SDK, sync and async, JSON and streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import openai as fake_openai
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder
from tests.gateway_server import RunningGateway, run_gateway


def _config(upstream_url: str) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "echo", "type": "echo", "models": ["echo"]},
            fake_openai.provider_config(upstream_url),
        ],
        "routes": [{"name": "smart", "targets": [{"provider": "openai", "model": "gpt-4o"}]}],
        "plugins": [{"name": "telemetry", "type": "telemetry", "order": -100}],
    }


@pytest.fixture
def gateway(openai_upstream: tuple[str, Recorder]) -> Iterator[RunningGateway]:
    with run_gateway(_config(openai_upstream[0])) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as sdk:
        yield sdk


def test_sync_chat_through_echo(gateway: RunningGateway, client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="echo/anything", messages=[{"role": "user", "content": "ping pong"}]
    )
    assert response.choices[0].message.content == "ping pong"
    assert response.choices[0].finish_reason == "stop"


def test_sync_stream_through_route(
    gateway: RunningGateway, client: openai.OpenAI, openai_upstream: tuple[str, Recorder]
) -> None:
    stream = client.chat.completions.create(
        model="smart", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == sc.TEXT
    # The gateway asked for usage to count tokens, but the client did not: no usage-only chunk.
    assert all(c.choices for c in chunks)
    sent = openai_upstream[1].requests[-1]
    assert sent.json["model"] == "gpt-4o"
    assert sent.headers["Authorization"] == "Bearer sk-test-openai-0123456789abcdef"


def test_stream_usage_when_client_asks(gateway: RunningGateway, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="openai/gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert usage and usage[-1].prompt_tokens == sc.PROMPT_TOKENS


async def test_async_chat_and_stream(gateway: RunningGateway) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused")
    response = await client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert response.choices[0].message.content == sc.TEXT
    assert response.usage is not None and response.usage.completion_tokens == sc.COMPLETION_TOKENS
    stream = await client.chat.completions.create(
        model="echo/x", messages=[{"role": "user", "content": "a b c"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "a b c"
    await client.close()


def test_tool_call_round_trip(gateway: RunningGateway, client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="openai/gpt-tool",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": sc.TOOL_NAME, "parameters": {"type": "object"}}}],
    )
    call = response.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == sc.TOOL_NAME and call.function.arguments == sc.TOOL_ARGS


def test_embeddings(gateway: RunningGateway, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"])
    assert [item.index for item in result.data] == [0, 1]
    echo = client.embeddings.create(model="echo/e", input="x")
    assert len(echo.data[0].embedding) == 8


def test_models_list_and_request_id(gateway: RunningGateway, client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert ids == {"smart", "echo/echo"}
    response = httpx.get(gateway.url + "/v1/models", headers={"x-request-id": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    generated = httpx.get(gateway.url + "/v1/models").headers["x-request-id"]
    assert len(generated) == 24


def test_upstream_error_is_mapped_faithfully(gateway: RunningGateway, client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="openai/error-429", messages=[{"role": "user", "content": "x"}])
    assert raised.value.body == {
        "message": sc.ERROR_MESSAGE,
        "type": "rate_limit_error",
        "code": None,
        "param": None,
    }
    assert raised.value.response.headers.get("x-request-id")


def test_models_retrieve_finds_routes_and_provider_models() -> None:
    """Issue 9 defect 10: ``GET /v1/models/{id}`` was missing (``models.retrieve`` got 404)."""
    config = {
        "providers": [{"name": "echo", "type": "echo", "models": ["listed"]}],
        "routes": [{"name": "chat", "targets": [{"provider": "echo", "model": "m"}]}],
    }
    with run_gateway(config) as gateway, openai.OpenAI(base_url=gateway.base_url, api_key="x") as client:
        assert client.models.retrieve("chat").owned_by == "asbru-route"
        assert client.models.retrieve("echo/listed").id == "echo/listed"
        assert client.models.retrieve("echo/any-model").owned_by == "echo"  # routable, so it exists
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("nowhere")
    assert missing.value.status_code == 404


def test_a_large_answer_arrives_whole_with_its_length(gateway: RunningGateway, client: openai.OpenAI) -> None:
    """An answer over the slice size is written in slices (other requests run between them): the
    client still gets every byte, the right Content-Length, and Bifrost's extra_fields."""
    text = " ".join(["word"] * 150_000)  # ~750 KB each way
    raw = client.chat.completions.with_raw_response.create(
        model="echo/anything", messages=[{"role": "user", "content": text}]
    )
    assert int(raw.headers["content-length"]) == len(raw.http_response.content) > 700_000
    assert raw.parse().choices[0].message.content == text
    assert raw.http_response.json()["extra_fields"]["provider"] == "echo"
