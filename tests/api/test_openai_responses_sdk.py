"""The ``openai`` SDK's Responses API against the gateway: every provider type, ``/v1`` and ``/openai``.

One gateway serves every provider type behind its wire-format fake (plus echo). OpenAI providers take
the Responses body as it is (pass-through: stored state and unknown fields reach them); the others
get it translated, and what they cannot take is a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.api.conftest import EveryProvider
from tests.conformance.adapters import ADAPTERS
from tests.fakes import scenarios as sc

PROVIDERS = [*(adapter.name for adapter in ADAPTERS), "echo"]
PREFIXES = ["/v1", "/openai"]
QUESTION = "What is the weather in Paris?"
TOOLS: Any = [
    {
        "type": "function",
        "name": sc.TOOL_NAME,
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def expected_text(provider: str) -> str:
    return QUESTION if provider == "echo" else sc.TEXT


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_create(every_provider: EveryProvider, prefix: str, provider: str) -> None:
    with every_provider.client(prefix) as client:
        response = client.responses.create(
            model=f"{provider}/model-text", input=QUESTION, instructions="Be brief.", metadata={"ticket": "7"}
        )
    assert response.output_text == expected_text(provider)
    assert response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens > 0
    if provider != "echo":
        assert (response.usage.input_tokens, response.usage.output_tokens) == (
            sc.PROMPT_TOKENS,
            sc.COMPLETION_TOKENS,
        )
    assert response.metadata == {"ticket": "7"}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_stream_helper_rebuilds_the_response(
    every_provider: EveryProvider, prefix: str, provider: str
) -> None:
    with (
        every_provider.client(prefix) as client,
        client.responses.stream(model=f"{provider}/model-text", input=QUESTION) as stream,
    ):
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == expected_text(provider)
    assert len(deltas) >= 2, "the answer arrived in one piece: not streamed"
    assert final.output_text == expected_text(provider)
    assert final.status == "completed"
    assert final.usage is not None and final.usage.total_tokens > 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_raw_stream_events_are_numbered_and_framed(every_provider: EveryProvider, provider: str) -> None:
    with every_provider.client() as client:
        events = list(client.responses.create(model=f"{provider}/model-text", input=QUESTION, stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", [adapter.name for adapter in ADAPTERS])
def test_function_tool_call(every_provider: EveryProvider, provider: str, stream: bool) -> None:
    model = f"{provider}/model-tool"
    with every_provider.client() as client:
        if stream:
            with client.responses.stream(model=model, input=QUESTION, tools=TOOLS) as events:
                arguments = "".join(
                    event.delta for event in events if event.type == "response.function_call_arguments.delta"
                )
                response = events.get_final_response()
            assert json.loads(arguments) == {"city": "Paris"}
        else:
            response = client.responses.create(model=model, input=QUESTION, tools=TOOLS)
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == sc.TOOL_NAME and calls[0].call_id
    assert json.loads(calls[0].arguments) == {"city": "Paris"}


@pytest.mark.parametrize("provider", [adapter.name for adapter in ADAPTERS])
def test_function_call_output_turn_reaches_the_upstream(every_provider: EveryProvider, provider: str) -> None:
    turn: Any = [
        {"role": "user", "content": QUESTION},
        {"type": "function_call", "call_id": sc.TOOL_CALL_ID, "name": sc.TOOL_NAME, "arguments": "{}"},
        {"type": "function_call_output", "call_id": sc.TOOL_CALL_ID, "output": '{"temp_c": 18}'},
    ]
    with every_provider.client() as client:
        response = client.responses.create(model=f"{provider}/model-text", input=turn, tools=TOOLS)
    assert response.output_text == sc.TEXT
    sent = json.dumps(every_provider.last(provider).json)
    assert "temp_c" in sent and sc.TOOL_NAME in sent


@pytest.mark.parametrize("status", [400, 429, 500])
@pytest.mark.parametrize("provider", [adapter.name for adapter in ADAPTERS])
def test_upstream_errors_keep_status_and_message(
    every_provider: EveryProvider, provider: str, status: int
) -> None:
    with every_provider.client("/openai") as client, pytest.raises(openai.APIStatusError) as raised:
        client.responses.create(model=f"{provider}/error-{status}", input=QUESTION)
    assert raised.value.status_code == status
    body = raised.value.body
    assert isinstance(body, dict) and sc.ERROR_MESSAGE in body["message"]


def test_a_stream_failing_midway_ends_with_an_error_event_when_passed_through(
    every_provider: EveryProvider,
) -> None:
    with every_provider.client() as client:
        events = list(client.responses.create(model="openai/fail-midstream", input=QUESTION, stream=True))
    assert [event.type for event in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1].type == "error"
    assert sc.ERROR_MESSAGE in events[-1].message


def test_a_stream_failing_midway_ends_with_response_failed_when_translated(
    every_provider: EveryProvider,
) -> None:
    with every_provider.client() as client:
        events = list(client.responses.create(model="groq/die-midstream", input=QUESTION, stream=True))
    assert events[0].type == "response.created"
    assert [event.type for event in events[-2:]] == ["error", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed" and failed.response.id == events[0].response.id


# --- pass-through and statelessness ---------------------------------------------------------------


def test_stored_state_and_unknown_fields_pass_through_to_openai(every_provider: EveryProvider) -> None:
    with every_provider.client("/openai") as client:
        response = client.responses.create(
            model="gpt-4o-mini",  # a bare name under /openai: the configured OpenAI provider
            input=QUESTION,
            previous_response_id="resp_earlier",
            store=True,
            reasoning={"effort": "low"},
            extra_body={"future_field": {"nested": [1, 2]}, "fallbacks": ["echo/x"]},
        )
    assert response.output_text == sc.TEXT
    sent = every_provider.last("openai", "/v1/responses").json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["previous_response_id"] == "resp_earlier"
    assert sent["future_field"] == {"nested": [1, 2]}
    assert sent["reasoning"] == {"effort": "low"} and sent["store"] is True
    assert "fallbacks" not in sent  # gateway-only


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "groq", "azure", "echo"])
def test_stored_state_is_a_400_naming_the_field_for_other_providers(
    every_provider: EveryProvider, provider: str
) -> None:
    with every_provider.client() as client, pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=f"{provider}/model-text", input=QUESTION, previous_response_id="resp_1")
    body = raised.value.body
    assert isinstance(body, dict) and body["param"] == "previous_response_id"
    assert "OpenAI" in body["message"]


def test_background_is_a_400_unless_passed_through(every_provider: EveryProvider) -> None:
    with every_provider.client() as client:
        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model="anthropic/model-text", input=QUESTION, background=True)
        assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "background"
        client.responses.create(model="openai/model-text", input=QUESTION, background=True)
    assert every_provider.last("openai", "/v1/responses").json["background"] is True


def test_built_in_tools_are_a_400_when_translated(every_provider: EveryProvider) -> None:
    with every_provider.client() as client, pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="gemini/model-text", input=QUESTION, tools=[{"type": "web_search"}])
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "tools[0].type"


def test_translated_request_reaches_anthropic_as_messages(every_provider: EveryProvider) -> None:
    with every_provider.client() as client:
        client.responses.create(
            model="anthropic/model-text", input=QUESTION, instructions="Be brief.", max_output_tokens=64
        )
    sent = every_provider.last("anthropic").json
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 64
    assert sent["messages"][0]["role"] == "user"


async def test_async_stream(every_provider: EveryProvider) -> None:
    client = openai.AsyncOpenAI(
        base_url=every_provider.gateway.url + "/openai/v1", api_key="k", max_retries=0
    )
    async with client.responses.stream(model="echo/x", input="one two three") as stream:
        text = "".join([event.delta async for event in stream if event.type == "response.output_text.delta"])
        final = await stream.get_final_response()
    await client.close()
    assert text == final.output_text == "one two three"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_fallback_from_pass_through_to_translation_renders_the_translated_answer(
    every_provider: EveryProvider, stream: bool
) -> None:
    options: Any = {
        "model": "openai/error-500",
        "input": QUESTION,
        "extra_body": {"fallbacks": ["anthropic/x"]},
    }
    with every_provider.client() as client:
        if stream:
            with client.responses.stream(**options) as events:
                response = events.get_final_response()
        else:
            response = client.responses.create(**options)
    assert response.output_text == sc.TEXT
    assert every_provider.last("openai").path == "/v1/responses"  # tried natively first
    assert every_provider.last("anthropic").json["messages"][0]["role"] == "user"
