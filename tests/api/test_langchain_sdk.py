"""LangChain's ``ChatOpenAI`` (``langchain-openai``) against the ``/langchain`` and ``/openai`` prefixes.

``ChatOpenAI`` calls chat completions by default and the Responses API with ``use_responses_api``:
both are served, with echo and with the OpenAI and Anthropic fakes (the latter translated).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.api.conftest import EveryProvider
from tests.fakes import scenarios as sc

PREFIXES = ["/langchain/v1", "/openai/v1"]


@tool
def get_weather(city: str) -> str:
    """Weather by city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module")
def gateway_url(every_provider: EveryProvider) -> str:
    return every_provider.gateway.url


def chat(gateway_url: str, prefix: str, model: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=gateway_url + prefix,
        api_key="client-key",  # type: ignore[arg-type]
        model=model,
        max_retries=0,
        **options,
    )


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
@pytest.mark.parametrize("prefix", PREFIXES)
def test_invoke(gateway_url: str, prefix: str, responses: bool) -> None:
    model = chat(gateway_url, prefix, "echo/x", use_responses_api=responses)
    answer = model.invoke("hello gateway")
    assert isinstance(answer, AIMessage)
    assert answer.text == "hello gateway"
    upstream = chat(gateway_url, prefix, "anthropic/model-text", use_responses_api=responses)
    assert upstream.invoke("hi").text == sc.TEXT


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
@pytest.mark.parametrize("prefix", PREFIXES)
def test_stream(gateway_url: str, prefix: str, responses: bool) -> None:
    model = chat(gateway_url, prefix, "openai/model-text", use_responses_api=responses)
    chunks = [chunk for chunk in model.stream("hi") if isinstance(chunk, AIMessageChunk) and chunk.text]
    assert "".join(chunk.text for chunk in chunks) == sc.TEXT
    assert len(chunks) >= 2


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_tool_call_and_result(gateway_url: str, provider: str, responses: bool) -> None:
    model = chat(gateway_url, "/langchain/v1", f"{provider}/model-tool", use_responses_api=responses)
    question = HumanMessage("What is the weather in Paris?")
    answer = model.bind_tools([get_weather]).invoke([question])
    assert isinstance(answer, AIMessage)
    [call] = answer.tool_calls
    assert call["name"] == sc.TOOL_NAME and call["args"] == {"city": "Paris"}
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"] or "")
    follow_up = chat(gateway_url, "/langchain/v1", f"{provider}/model-text", use_responses_api=responses)
    final = follow_up.bind_tools([get_weather]).invoke([question, answer, result])
    assert final.text == sc.TEXT
