"""LangChain's ``ChatAnthropic`` pointed at the gateway, under ``/anthropic`` and ``/langchain``:
invoke, stream, and a tool call (JSON and streamed), with the echo provider and the fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from tests.api.anthropic_fixtures import WEATHER, upstreams_with_keys
from tests.conformance.adapters import Upstreams
from tests.fakes import scenarios as sc
from tests.gateway_server import RunningGateway, run_gateway

PREFIXES = ["/anthropic", "/langchain"]
PROVIDERS = ["anthropic", "openai", "gemini"]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with upstreams_with_keys() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(upstreams: Upstreams) -> Iterator[RunningGateway]:
    with run_gateway({"providers": upstreams.providers}) as running:
        yield running


def chat(gateway: RunningGateway, prefix: str, model: str) -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        model=model, base_url=gateway.url + prefix, api_key="client-key", max_retries=0, max_tokens=200
    )


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_invoke_and_stream(gateway: RunningGateway, prefix: str, provider: str) -> None:
    llm = chat(gateway, prefix, f"{provider}/model-text")
    expected = "say it back" if provider == "echo" else sc.TEXT
    answer = llm.invoke("say it back")
    assert answer.content == expected
    assert answer.response_metadata["stop_reason"] == "end_turn"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
    pieces = [chunk.content for chunk in llm.stream("say it back") if chunk.content]
    assert "".join(str(piece) for piece in pieces) == expected
    assert len(pieces) >= 2, "not streamed"


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call(gateway: RunningGateway, prefix: str, provider: str) -> None:
    llm = chat(gateway, prefix, f"{provider}/model-tool").bind_tools([WEATHER])
    answer = llm.invoke("Weather in Paris?")
    assert isinstance(answer, AIMessage)
    assert [(call["name"], call["args"]) for call in answer.tool_calls] == [(sc.TOOL_NAME, {"city": "Paris"})]
    streamed: AIMessageChunk | None = None
    for chunk in llm.stream("Weather in Paris?"):
        assert isinstance(chunk, AIMessageChunk)
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None
    assert [(call["name"], call["args"]) for call in streamed.tool_calls] == [
        (sc.TOOL_NAME, {"city": "Paris"})
    ]


def test_tool_result_round_trip_to_openai(gateway: RunningGateway, upstreams: Upstreams) -> None:
    """A whole agent turn: the tool call LangChain got back, and its result, reach OpenAI translated."""
    llm = chat(gateway, "/langchain", "openai/model-tool").bind_tools([WEATHER])
    question = HumanMessage("Weather in Paris?")
    call = llm.invoke([question])
    assert isinstance(call, AIMessage) and call.tool_calls
    result = ToolMessage("sunny", tool_call_id=call.tool_calls[0]["id"])
    final = chat(gateway, "/langchain", "openai/model-text").invoke([question, call, result])
    assert final.content == sc.TEXT
    sent = upstreams.recorders["openai"].requests[-1].json["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == sc.TOOL_NAME
    assert sent[2] == {"role": "tool", "tool_call_id": sc.TOOL_CALL_ID, "content": "sunny"}
