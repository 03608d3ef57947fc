"""The gateway through the official ``anthropic`` SDK at ``/anthropic``: every provider type, both auth
styles, pass-through to an Anthropic upstream (untouched fields, the native stream event-for-event),
and translation to OpenAI and Gemini upstreams (what those fakes received)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.api.anthropic_fixtures import WEATHER, upstreams_with_keys
from tests.conformance.adapters import ADAPTERS, Upstreams
from tests.conftest import TEST_KEYS
from tests.fakes import scenarios as sc
from tests.fakes.anthropic import sse, stream_events
from tests.fakes.server import RecordedRequest
from tests.gateway_server import RunningGateway, run_gateway

PROVIDERS = [adapter.name for adapter in ADAPTERS]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with upstreams_with_keys() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(upstreams: Upstreams) -> Iterator[RunningGateway]:
    providers = [
        {**provider, "models": ["echo"]} if provider["name"] == "echo" else provider
        for provider in upstreams.providers
    ]
    routes = [{"name": "claude", "targets": [{"provider": "anthropic", "model": "claude-routed"}]}]
    with run_gateway({"providers": providers, "routes": routes}) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key="client-key", max_retries=0) as sdk:
        yield sdk


def last(upstreams: Upstreams, provider: str) -> RecordedRequest:
    return upstreams.recorders[provider].requests[-1]


# --- every provider type --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_messages(client: anthropic.Anthropic, provider: str) -> None:
    message = client.messages.create(model=f"{provider}/model-text", max_tokens=100, messages=USER)
    expected = USER[0]["content"] if provider == "echo" else sc.TEXT
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == expected  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    if provider != "echo":
        assert (message.usage.input_tokens, message.usage.output_tokens) == (
            sc.PROMPT_TOKENS,
            sc.COMPLETION_TOKENS,
        )


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_stream(client: anthropic.Anthropic, provider: str) -> None:
    with client.messages.stream(model=f"{provider}/model-text", max_tokens=100, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    expected = USER[0]["content"] if provider == "echo" else sc.TEXT
    assert "".join(pieces) == expected
    assert len(pieces) >= 2, "not streamed"
    assert final.stop_reason == "end_turn"
    if provider != "echo":
        assert final.usage.output_tokens == sc.COMPLETION_TOKENS
        assert final.usage.input_tokens == sc.PROMPT_TOKENS


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call(client: anthropic.Anthropic, provider: str) -> None:
    message = client.messages.create(
        model=f"{provider}/model-tool", max_tokens=100, messages=USER, tools=[WEATHER]
    )
    assert message.stop_reason == "tool_use"
    call = message.content[-1]
    assert call.type == "tool_use"
    assert (call.name, call.input) == (sc.TOOL_NAME, {"city": "Paris"})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_tool_input(client: anthropic.Anthropic, provider: str) -> None:
    pieces: list[str] = []
    with client.messages.stream(
        model=f"{provider}/model-tool", max_tokens=100, messages=USER, tools=[WEATHER]
    ) as stream:
        for event in stream:
            if event.type == "input_json":
                pieces.append(event.partial_json)
        final = stream.get_final_message()
    call = final.content[-1]
    assert call.type == "tool_use"
    assert (call.name, call.input) == (sc.TOOL_NAME, {"city": "Paris"})
    assert final.stop_reason == "tool_use"
    assert orjson.loads("".join(pieces)) == {"city": "Paris"}


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_count_tokens(client: anthropic.Anthropic, upstreams: Upstreams, provider: str) -> None:
    counted = client.messages.count_tokens(model=f"{provider}/model-text", messages=USER, tools=[WEATHER])
    if provider == "anthropic":  # asked upstream; everyone else gets the local estimate
        assert counted.input_tokens == sc.PROMPT_TOKENS
        sent = last(upstreams, "anthropic")
        assert sent.path == "/v1/messages/count_tokens"
        assert sent.json["tools"] == [WEATHER]
    else:
        assert 10 < counted.input_tokens < 100


ERRORS = {
    400: (anthropic.BadRequestError, "invalid_request_error"),
    429: (anthropic.RateLimitError, "rate_limit_error"),
    500: (anthropic.InternalServerError, "api_error"),
}


@pytest.mark.parametrize("status", ERRORS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_upstream_errors(client: anthropic.Anthropic, provider: str, status: int) -> None:
    exception, kind = ERRORS[status]
    with pytest.raises(exception) as raised:
        client.messages.create(model=f"{provider}/error-{status}", max_tokens=10, messages=USER)
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert sc.ERROR_MESSAGE in body["error"]["message"]
    assert body["request_id"] == raised.value.response.headers["x-request-id"]


def test_overloaded_keeps_anthropics_type(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model="anthropic/error-529", max_tokens=10, messages=USER)
    assert raised.value.status_code == 529
    assert raised.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


# --- gateway errors, auth styles, models ----------------------------------------------------------


def test_gateway_errors_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as unsupported:
        client.messages.create(
            model="openai/gpt-4o",
            max_tokens=10,
            system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            messages=USER,
        )
    assert unsupported.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "cache_control" in unsupported.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as no_max_tokens:
        client.messages.create(model="echo/x", messages=USER, max_tokens=0)
    assert "max_tokens" in no_max_tokens.value.body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer sk-ant-client", "anthropic-version": "2099-12-31"},
        {"x-api-key": "anything"},
    ],
    ids=["x-api-key", "bearer", "no-version"],
)
def test_both_auth_styles_and_any_version(gateway: RunningGateway, headers: dict[str, str]) -> None:
    response = httpx.post(
        gateway.url + "/anthropic/v1/messages",
        headers=headers,
        json={"model": "echo/x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "hi"}]


def test_sdk_auth_token_style(gateway: RunningGateway) -> None:
    with anthropic.Anthropic(base_url=gateway.url + "/anthropic", auth_token="tok", max_retries=0) as sdk:
        message = sdk.messages.create(
            model="echo/x", max_tokens=10, messages=[{"role": "user", "content": "yo"}]
        )
    assert message.content[0].text == "yo"  # type: ignore[union-attr]


def test_models(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    assert [model.id for model in models] == ["claude", "echo/echo"]
    assert all(model.type == "model" and model.display_name == model.id for model in models)


def test_models_under_a_shared_prefix_answer_in_the_callers_shape(gateway: RunningGateway) -> None:
    """``/langchain/v1/models`` serves OpenAI and Anthropic clients; ``anthropic-version`` tells which."""
    with anthropic.Anthropic(base_url=gateway.url + "/langchain", api_key="k", max_retries=0) as sdk:
        assert [model.id for model in sdk.models.list()] == ["claude", "echo/echo"]
    openai_shape = httpx.get(gateway.url + "/langchain/v1/models").json()
    assert openai_shape["object"] == "list" and "has_more" not in openai_shape


def test_bare_name_and_route_reach_the_anthropic_provider(
    client: anthropic.Anthropic, upstreams: Upstreams
) -> None:
    client.messages.create(model="claude-bare-name", max_tokens=10, messages=USER)
    assert last(upstreams, "anthropic").json["model"] == "claude-bare-name"
    message = client.messages.create(model="claude", max_tokens=10, messages=USER)
    assert last(upstreams, "anthropic").json["model"] == "claude-routed"
    assert message.content[0].text == sc.TEXT  # type: ignore[union-attr]


def test_served_by_headers(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(model="gemini/model-text", max_tokens=10, messages=USER)
    assert raw.headers["x-asbru-provider"] == "gemini"
    assert raw.headers["x-asbru-model"] == "model-text"


# --- pass-through ---------------------------------------------------------------------------------

UNMODELLED: dict[str, Any] = {
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
        }
    ],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "user-1"},
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
    "some_future_beta_field": {"nested": [1, "two", None]},
}


def test_pass_through_forwards_unmodelled_fields_untouched(
    gateway: RunningGateway, upstreams: Upstreams
) -> None:
    body = {"model": "anthropic/claude-x", "max_tokens": 2000, "fallbacks": ["openai/gpt-4o"], **UNMODELLED}
    headers = {"x-api-key": "client-key", "anthropic-beta": "context-management-2025-06-27"}
    response = httpx.post(gateway.url + "/anthropic/v1/messages", headers=headers, json=body)
    assert response.status_code == 200, response.text
    sent = last(upstreams, "anthropic")
    assert sent.json == {"model": "claude-x", "max_tokens": 2000, **UNMODELLED}
    assert sent.headers["x-api-key"] == TEST_KEYS["ASBRU_TEST_ANTHROPIC_KEY"]
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"  # the beta fields' header
    assert response.json()["id"] == "msg_fake_0001"


@pytest.mark.parametrize("model", ["model-text", "model-tool"])
def test_pass_through_stream_arrives_event_for_event(
    gateway: RunningGateway, upstreams: Upstreams, model: str
) -> None:
    body = {"model": f"anthropic/{model}", "max_tokens": 100, "stream": True, **UNMODELLED}
    with httpx.stream(
        "POST", gateway.url + "/anthropic/v1/messages", headers={"x-api-key": "k"}, json=body
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = b"".join(response.iter_bytes())
    assert received == b"".join(sse(name, data) for name, data in stream_events(model))
    assert last(upstreams, "anthropic").json == {
        "model": model,
        "max_tokens": 100,
        "stream": True,
        **UNMODELLED,
    }


def test_pass_through_midstream_error_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(model="anthropic/midstream-error", max_tokens=10, messages=USER) as stream,
    ):
        for _ in stream:
            pass
    assert raised.value.body["error"] == {  # type: ignore[index]
        "type": "overloaded_error",
        "message": sc.ERROR_MESSAGE,
    }


# --- translation to other families ----------------------------------------------------------------

CONVERSATION: Any = [
    {"role": "user", "content": [
        {"type": "text", "text": "What is in this image, and the weather?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]},
    {"role": "assistant", "content": [
        {"type": "text", "text": "A cat. Checking the weather."},
        {"type": "tool_use", "id": "toolu_1", "name": sc.TOOL_NAME, "input": {"city": "Paris"}},
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21 C"},
    ]},
]  # fmt: skip


def converse(client: anthropic.Anthropic, upstreams: Upstreams, provider: str, **options: Any) -> Any:
    """The whole ``CONVERSATION`` to ``provider``; returns the body that provider's fake received."""
    message = client.messages.create(
        model=f"{provider}/model-x",
        max_tokens=300,
        system="You are terse.",
        messages=CONVERSATION,
        tools=[WEATHER],
        **options,
    )
    assert message.content[0].text == sc.TEXT  # type: ignore[union-attr]
    return last(upstreams, provider).json


def test_translated_to_openai(client: anthropic.Anthropic, upstreams: Upstreams) -> None:
    sent = converse(
        client,
        upstreams,
        "openai",
        tool_choice={"type": "auto"},
        stop_sequences=["END"],
        metadata={"user_id": "u-9"},
        extra_body={"temperature": 0.5},  # the SDK 2.x no longer has sampling parameters; the API does
    )
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image, and the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": "A cat. Checking the weather.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": sc.TOOL_NAME, "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21 C"},
    ]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert (sent["tool_choice"], sent["stop"], sent["temperature"], sent["user"], sent["max_tokens"]) == (
        "auto",
        ["END"],
        0.5,
        "u-9",
        300,
    )


def test_translated_to_gemini(client: anthropic.Anthropic, upstreams: Upstreams) -> None:
    sent = converse(client, upstreams, "gemini")
    assert sent["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert [content["role"] for content in sent["contents"]] == ["user", "model", "user"]
    user_parts = sent["contents"][0]["parts"]
    assert user_parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    call = sent["contents"][1]["parts"][-1]["functionCall"]
    assert (call["name"], call["args"]) == (sc.TOOL_NAME, {"city": "Paris"})
    response = sent["contents"][2]["parts"][0]["functionResponse"]
    assert response["name"] == sc.TOOL_NAME
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == sc.TOOL_NAME
    assert sent["generationConfig"]["maxOutputTokens"] == 300
