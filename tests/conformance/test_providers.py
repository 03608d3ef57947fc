"""One conformance suite for every provider adapter: chat, stream, tools, errors, usage.

Each adapter runs the same scenarios (``tests/fakes/scenarios.py``) through the real gateway,
driven by the official ``openai`` SDK, against a local fake that speaks that provider's documented
wire format on a real socket. ``groq`` is here to prove the OpenAI-compatible family is config only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.conformance.adapters import ADAPTERS, Adapter
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway


@dataclass
class Setup:
    gateway: RunningGateway
    client: openai.OpenAI
    recorder: Recorder
    provider: str


@pytest.fixture(params=ADAPTERS, ids=lambda adapter: adapter.name)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    adapter: Adapter = request.param
    recorder = Recorder()
    assert adapter.make_app is not None
    with serve_in_thread(adapter.make_app(recorder)) as url:
        # "model-usage" is a configured model: metric labels name configured models only.
        provider = {**adapter.provider(url), "network": {"max_retries": 0}, "models": ["model-usage"]}
        config = {"providers": [provider], "plugins": [{"name": "telemetry", "type": "telemetry"}]}
        with (
            run_gateway(config) as gateway,
            openai.OpenAI(base_url=gateway.base_url, api_key="client-key", max_retries=0) as client,
        ):
            yield Setup(gateway, client, recorder, provider["name"])


USER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": sc.TOOL_NAME,
            "description": "Weather by city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_chat(setup: Setup) -> None:
    response = setup.client.chat.completions.create(model=f"{setup.provider}/model-text", messages=USER)
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == sc.TEXT
    assert choice.finish_reason == "stop"
    assert setup.recorder.requests, "the fake upstream was called"


def test_usage(setup: Setup) -> None:
    # The metrics registry is process-wide: a model name used only here keeps the count exact.
    response = setup.client.chat.completions.create(model=f"{setup.provider}/model-usage", messages=USER)
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (
        sc.PROMPT_TOKENS,
        sc.COMPLETION_TOKENS,
    )
    assert response.usage.total_tokens == sc.PROMPT_TOKENS + sc.COMPLETION_TOKENS
    metrics = httpx.get(setup.gateway.url + "/metrics").text
    assert (
        f'asbru_tokens_total{{direction="output",model="model-usage",provider="{setup.provider}"}} '
        f"{float(sc.COMPLETION_TOKENS)}"
    ) in metrics


def test_stream(setup: Setup) -> None:
    stream = setup.client.chat.completions.create(
        model=f"{setup.provider}/model-text",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == sc.TEXT
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop"
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.content) >= 2
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert usage and usage[-1].completion_tokens == sc.COMPLETION_TOKENS


def test_tools(setup: Setup) -> None:
    response = setup.client.chat.completions.create(
        model=f"{setup.provider}/model-tool", messages=USER, tools=TOOLS, tool_choice="auto"
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id
    assert call.function.name == sc.TOOL_NAME
    assert json.loads(call.function.arguments) == json.loads(sc.TOOL_ARGS)


def test_tool_result_turn(setup: Setup) -> None:
    messages: Any = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": sc.TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": sc.TOOL_NAME, "arguments": sc.TOOL_ARGS},
                }
            ],
        },
        {"role": "tool", "tool_call_id": sc.TOOL_CALL_ID, "content": '{"temp_c": 18}'},
    ]
    response = setup.client.chat.completions.create(
        model=f"{setup.provider}/model-text", messages=messages, tools=TOOLS
    )
    assert response.choices[0].message.content == sc.TEXT
    sent = json.dumps(setup.recorder.requests[-1].json)
    assert "18" in sent and sc.TOOL_NAME in sent  # the tool result reached the upstream


def test_streamed_tool_call(setup: Setup) -> None:
    stream = setup.client.chat.completions.create(
        model=f"{setup.provider}/model-tool", messages=USER, tools=TOOLS, stream=True
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            if call.function and call.function.name:
                name = call.function.name
            if call.function and call.function.arguments:
                arguments += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert name == sc.TOOL_NAME
    assert json.loads(arguments) == json.loads(sc.TOOL_ARGS)
    assert finish == "tool_calls"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_errors(setup: Setup, status: int, exception: type[openai.APIStatusError]) -> None:
    with pytest.raises(exception) as raised:
        setup.client.chat.completions.create(model=f"{setup.provider}/error-{status}", messages=USER)
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "code", "param"}
    assert sc.ERROR_MESSAGE in body["message"]
    expected_type = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error"}[status]
    if setup.provider not in ("openai", "groq", "azure"):  # the OpenAI fake's own types pass through
        assert body["type"] == expected_type
