"""The gateway through the official ``google-genai`` SDK at ``/genai`` (``/v1`` and ``/v1beta``).

One gateway serves every provider type behind its wire-format fake (plus echo). The SDK calls
generate, stream, embed, count tokens, a function call and the turn that answers it, and sees
errors as ``google.genai.errors.APIError`` with the right code. Raw HTTP checks what the SDK cannot
show: the pass-through body reaching Gemini untouched, the stream relayed event for event, and
what a translated request looks like at an OpenAI or Anthropic upstream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conformance.adapters import ADAPTERS, Upstreams, all_upstreams
from tests.conftest import TEST_KEYS
from tests.fakes import gemini as fake_gemini
from tests.fakes import scenarios as sc
from tests.gateway_server import RunningGateway, run_gateway

PROVIDERS = [adapter.name for adapter in ADAPTERS]
OPENAI_FAMILY = ("openai", "groq", "azure")
QUESTION = "What is the weather in Paris?"
VERSIONS = ["v1", "v1beta"]


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


NO_AUTO_CALLS = types.AutomaticFunctionCallingConfig(disable=True)
TOOLS = types.GenerateContentConfig(tools=[get_weather], automatic_function_calling=NO_AUTO_CALLS)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with all_upstreams() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(upstreams: Upstreams) -> Iterator[RunningGateway]:
    config = {
        "providers": [
            {**provider, "models": ["listed-model"]} if provider["name"] == "echo" else provider
            for provider in upstreams.providers
        ],
        "routes": [{"name": "smart", "targets": [{"provider": "openai", "model": "gpt-4o"}]}],
    }
    with pytest.MonkeyPatch.context() as patch:  # the function-scoped key fixture comes too late here
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with run_gateway(config) as running:
            yield running


@pytest.fixture(params=VERSIONS)
def client(request: pytest.FixtureRequest, gateway: RunningGateway) -> genai.Client:
    options = types.HttpOptions(base_url=gateway.url + "/genai", api_version=request.param)
    return genai.Client(api_key="client-key", http_options=options)


def last_sent(upstreams: Upstreams, provider: str) -> Any:
    return upstreams.recorders[provider].requests[-1]


# --- generate and stream, every provider -------------------------------------------------------------


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_generate(client: genai.Client, provider: str) -> None:
    response = client.models.generate_content(model=f"{provider}/model-text", contents=QUESTION)
    assert response.text == (QUESTION if provider == "echo" else sc.TEXT)
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count
    if provider != "echo":
        assert (usage.prompt_token_count, usage.candidates_token_count) == (
            sc.PROMPT_TOKENS,
            sc.COMPLETION_TOKENS,
        )


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_stream(client: genai.Client, provider: str) -> None:
    chunks = list(client.models.generate_content_stream(model=f"{provider}/model-text", contents=QUESTION))
    texts = [chunk.text for chunk in chunks if chunk.text]
    assert "".join(texts) == (QUESTION if provider == "echo" else sc.TEXT)
    assert len(texts) >= 2, "the answer arrived in one piece: not streamed"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count


async def test_async_client_streams(gateway: RunningGateway) -> None:
    """The async client reads SSE with aiohttp (given our own session: the SDK's default subclasses
    ``ClientSession``, which aiohttp >= 3.14 warns about)."""
    async with aiohttp.ClientSession() as session:
        options = types.HttpOptions(
            base_url=gateway.url + "/genai", api_version="v1beta", aiohttp_client=session
        )
        client = genai.Client(api_key="k", http_options=options)
        stream = await client.aio.models.generate_content_stream(
            model="anthropic/model-text", contents=QUESTION
        )
        text = "".join([chunk.text or "" async for chunk in stream])
    assert text == sc.TEXT


def test_route_names_and_family_defaults_work_in_the_path(client: genai.Client, upstreams: Upstreams) -> None:
    assert client.models.generate_content(model="smart", contents=QUESTION).text == sc.TEXT
    assert last_sent(upstreams, "openai").json["model"] == "gpt-4o"
    # A bare Gemini model name under /genai goes to the configured Gemini provider (Bifrost's rule).
    assert client.models.generate_content(model="models/gemini-2.5-flash", contents=QUESTION).text == sc.TEXT
    assert last_sent(upstreams, "gemini").path.endswith("/models/gemini-2.5-flash:generateContent")


# --- tools ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_function_call_and_the_turn_that_answers_it(
    client: genai.Client, upstreams: Upstreams, provider: str
) -> None:
    first = client.models.generate_content(model=f"{provider}/model-tool", contents=QUESTION, config=TOOLS)
    (call,) = first.function_calls or []
    assert (call.name, call.args) == (sc.TOOL_NAME, {"city": "Paris"})
    assert first.candidates and first.candidates[0].finish_reason == types.FinishReason.STOP
    streamed = [
        function_call
        for chunk in client.models.generate_content_stream(
            model=f"{provider}/model-tool", contents=QUESTION, config=TOOLS
        )
        for function_call in chunk.function_calls or []
    ]
    assert [(c.name, c.args) for c in streamed] == [(sc.TOOL_NAME, {"city": "Paris"})]  # whole, once

    assert first.candidates[0].content is not None
    result = types.Part.from_function_response(name=sc.TOOL_NAME, response={"temp": 21})
    contents = [
        types.Content(role="user", parts=[types.Part(text=QUESTION)]),
        first.candidates[0].content,
        types.Content(role="user", parts=[result]),
    ]
    second = client.models.generate_content(model=f"{provider}/model-text", contents=contents, config=TOOLS)
    assert second.text == sc.TEXT
    _assert_result_delivered(last_sent(upstreams, provider).json, provider, call.id)


def _assert_result_delivered(sent: dict[str, Any], provider: str, call_id: str | None) -> None:
    """The function result reached the upstream paired with the call, in that provider's terms."""
    if provider in OPENAI_FAMILY:
        assistant, tool = sent["messages"][-2:]
        assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"] == call_id
        assert orjson.loads(tool["content"]) == {"temp": 21}
    elif provider == "anthropic":
        use = sent["messages"][-2]["content"][-1]
        result = sent["messages"][-1]["content"][0]
        assert use["type"] == "tool_use" and result["type"] == "tool_result"
        assert use["id"] == result["tool_use_id"] == call_id
    else:  # Gemini: passed through as the SDK wrote it
        assert sent["contents"][-1]["parts"][0]["functionResponse"]["response"] == {"temp": 21}
        assert sent["contents"][-2]["parts"][0]["functionCall"]["name"] == sc.TOOL_NAME


# --- embeddings and token counts ------------------------------------------------------------------------


def test_embed_through_gemini_passes_through(client: genai.Client, upstreams: Upstreams) -> None:
    config = types.EmbedContentConfig(task_type="RETRIEVAL_QUERY", output_dimensionality=3)
    result = client.models.embed_content(
        model="gemini/text-embedding-004", contents=["a", "b"], config=config
    )
    assert [embedding.values for embedding in result.embeddings or []] == [fake_gemini.EMBEDDING] * 2
    sent = last_sent(upstreams, "gemini")
    assert sent.path.endswith("/models/text-embedding-004:batchEmbedContents")
    assert {request["taskType"] for request in sent.json["requests"]} == {"RETRIEVAL_QUERY"}
    assert {request["model"] for request in sent.json["requests"]} == {"models/text-embedding-004"}


@pytest.mark.parametrize("provider", ["openai", "echo"])
def test_embed_is_translated_for_other_providers(client: genai.Client, provider: str) -> None:
    result = client.models.embed_content(model=f"{provider}/embedder", contents=["a", "b"])
    vectors = [embedding.values for embedding in result.embeddings or []]
    assert len(vectors) == 2 and all(vectors)
    with pytest.raises(genai_errors.ClientError) as raised:
        client.models.embed_content(
            model=f"{provider}/embedder",
            contents="a",
            config=types.EmbedContentConfig(task_type="CLUSTERING"),
        )
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    assert "taskType" in (raised.value.message or "")


def test_embed_content_single(gateway: RunningGateway) -> None:
    body = {"content": {"parts": [{"text": "a"}]}}
    for model in ("gemini/e", "openai/e"):
        response = httpx.post(f"{gateway.url}/genai/v1beta/models/{model}:embedContent", json=body)
        assert response.status_code == 200, response.text
        assert list(response.json()) == ["embedding"]


def test_count_tokens(client: genai.Client, upstreams: Upstreams) -> None:
    native = client.models.count_tokens(model="gemini/gemini-2.5-flash", contents=QUESTION)
    assert native.total_tokens == fake_gemini.COUNTED_TOKENS
    assert last_sent(upstreams, "gemini").path.endswith("/models/gemini-2.5-flash:countTokens")
    for provider in ("openai", "anthropic", "echo"):
        estimate = client.models.count_tokens(model=f"{provider}/m", contents=QUESTION)
        assert estimate.total_tokens == 1 + math.ceil(len(QUESTION) / 4)  # the documented local estimate


def test_models_list(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert names == ["models/smart", "models/echo/listed-model"]


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 429, 500])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_upstream_errors(client: genai.Client, provider: str, status: int) -> None:
    with pytest.raises(genai_errors.APIError) as raised:
        client.models.generate_content(model=f"{provider}/error-{status}", contents=QUESTION)
    error = raised.value
    assert error.code == status
    assert sc.ERROR_MESSAGE in (error.message or "")
    assert error.status == {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}[status]
    assert isinstance(error, genai_errors.ClientError if status < 500 else genai_errors.ServerError)


def test_stream_errors_before_the_first_event_keep_their_status(client: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as raised:
        list(client.models.generate_content_stream(model="openai/error-429", contents=QUESTION))
    assert raised.value.code == 429


def test_unknown_model_is_404() -> None:
    """Under /genai a bare name goes to the Gemini provider; without one, an unknown name is a 404."""
    with run_gateway({"providers": [{"name": "echo", "type": "echo"}]}) as gateway:
        options = types.HttpOptions(base_url=gateway.url + "/genai", api_version="v1beta")
        client = genai.Client(api_key="k", http_options=options)
        with pytest.raises(genai_errors.ClientError) as raised:
            client.models.generate_content(model="gemini-2.5-flash", contents=QUESTION)
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"


def test_untranslatable_field_is_400_naming_it(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    with pytest.raises(genai_errors.ClientError) as raised:
        client.models.generate_content(model="openai/m", contents=QUESTION, config=config)
    assert raised.value.code == 400
    assert "tools[0].googleSearch" in (raised.value.message or "")


@pytest.mark.parametrize("role", [{"x": 1}, ["user"], 7])
def test_non_string_role_is_400_on_every_path(gateway: RunningGateway, role: Any) -> None:
    body = {"contents": [{"role": role, "parts": [{"text": "hi"}]}]}
    for model in ("gemini/model-text", "openai/model-text", "echo/x"):
        response = httpx.post(f"{gateway.url}/genai/v1beta/models/{model}:generateContent", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert response.headers["x-request-id"]


def test_stream_without_alt_sse_is_400(gateway: RunningGateway) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    response = httpx.post(f"{gateway.url}/genai/v1/models/echo/x:streamGenerateContent", json=body)
    assert response.status_code == 400
    assert "alt=sse" in response.json()["error"]["message"]


def test_key_may_come_in_the_query(gateway: RunningGateway) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    response = httpx.post(f"{gateway.url}/genai/v1beta/models/echo/x:generateContent?key=abc", json=body)
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"] == [{"text": "hi"}]


# --- pass-through and cross-dialect, on the wire ---------------------------------------------------------


def test_pass_through_reaches_gemini_untouched(gateway: RunningGateway, upstreams: Upstreams) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi", "futurePartField": 1}]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}, "mediaResolution": "LOW"},
        "cachedContent": "cachedContents/abc",
        "brandNewField": {"nested": [1, 2]},
        "fallbacks": ["openai/gpt-4o"],
    }
    response = httpx.post(f"{gateway.url}/genai/v1beta/models/gemini/model-text:generateContent", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-asbru-provider"] == "gemini"
    sent = last_sent(upstreams, "gemini")
    assert sent.path == "/v1beta/models/model-text:generateContent"
    assert sent.json == {name: value for name, value in body.items() if name != "fallbacks"}
    assert sent.headers["x-goog-api-key"] == TEST_KEYS["ASBRU_TEST_GEMINI_KEY"]


def test_native_stream_is_relayed_event_for_event(gateway: RunningGateway, upstreams: Upstreams) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    upstream_url = last_sent_base(upstreams)
    direct = httpx.post(
        f"{upstream_url}/v1beta/models/model-text:streamGenerateContent?alt=sse",
        json=body,
        headers={"x-goog-api-key": "k"},
    )
    relayed = httpx.post(
        f"{gateway.url}/genai/v1beta/models/gemini/model-text:streamGenerateContent?alt=sse", json=body
    )
    assert relayed.headers["content-type"].startswith("text/event-stream")
    assert relayed.content == direct.content.replace(b"\r\n", b"\n")
    assert relayed.content.count(b"\n\n") == len(sc.STREAM_PIECES)


def last_sent_base(upstreams: Upstreams) -> str:
    """The Gemini fake's own URL, from the provider config the gateway was given."""
    gemini = next(provider for provider in upstreams.providers if provider["name"] == "gemini")
    return str(gemini["base_url"]).removesuffix("/v1beta")


def test_gemini_in_openai_out_on_the_wire(client: genai.Client, upstreams: Upstreams) -> None:
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.3,
        max_output_tokens=64,
        stop_sequences=["END"],
        tools=[get_weather],
        automatic_function_calling=NO_AUTO_CALLS,
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
    )
    image = types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")
    client.models.generate_content(model="openai/gpt-4o", contents=[QUESTION, image], config=config)
    sent = last_sent(upstreams, "openai").json
    assert sent["model"] == "gpt-4o"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": QUESTION},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ],
        },
    ]
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.3, 64, ["END"])
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert sent["tool_choice"] == "required"


def test_gemini_in_anthropic_out_on_the_wire(client: genai.Client, upstreams: Upstreams) -> None:
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        max_output_tokens=64,
        top_k=5,
        tools=[get_weather],
        automatic_function_calling=NO_AUTO_CALLS,
    )
    client.models.generate_content(model="anthropic/claude-x", contents=QUESTION, config=config)
    sent = last_sent(upstreams, "anthropic").json
    assert sent["model"] == "claude-x"
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent["messages"][0]["role"] == "user"
    assert sent["max_tokens"] == 64
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}


def test_error_mid_stream_is_a_last_error_event(client: genai.Client) -> None:
    """The stream started, then the upstream died: the SDK raises the gateway's error event."""
    stream = client.models.generate_content_stream(model="openai/die-midstream", contents=QUESTION)
    assert next(stream).text, "the first event arrived before the failure"
    with pytest.raises(genai_errors.ServerError) as raised:
        list(stream)
    assert raised.value.code == 502


def test_model_names_with_colons_in_the_path(gateway: RunningGateway) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    response = httpx.post(f"{gateway.url}/genai/v1beta/models/echo/llama3:8b:generateContent", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["modelVersion"] == "llama3:8b"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_pass_through_falls_back_to_a_translated_provider(
    gateway: RunningGateway, upstreams: Upstreams, stream: bool
) -> None:
    """Gemini fails, the request's own fallback is OpenAI: the same body, now translated."""
    body = {"contents": [{"parts": [{"text": "hi"}]}], "fallbacks": ["openai/gpt-4o"]}
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    response = httpx.post(f"{gateway.url}/genai/v1beta/models/gemini/error-500:{method}", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-asbru-provider"] == "openai"
    assert last_sent(upstreams, "gemini").path.endswith("/models/error-500:" + method.partition("?")[0])
    assert last_sent(upstreams, "openai").json["messages"] == [{"role": "user", "content": "hi"}]
    if stream:
        events = [orjson.loads(event[6:]) for event in response.content.split(b"\n\n") if event]
        text = "".join(
            part["text"] for event in events for part in event["candidates"][0]["content"]["parts"]
        )
    else:
        text = response.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert text == sc.TEXT
