"""The ``openai`` SDK's legacy ``completions`` against the gateway, and the Azure-style drop-in paths.

Completions: every provider type behind its fake (plus echo), on ``/v1`` and ``/openai``, JSON and
streamed; OpenAI providers take the body as it is. Azure style: the ``AzureOpenAI`` client with
``azure_endpoint`` set to the gateway calls ``/openai/deployments/{deployment}/chat/completions``.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.api.conftest import EveryProvider
from tests.conformance.adapters import ADAPTERS
from tests.fakes import scenarios as sc

PROVIDERS = [*(adapter.name for adapter in ADAPTERS), "echo"]
PROMPT = "Say hello"
USER: Any = [{"role": "user", "content": PROMPT}]


def expected_text(provider: str) -> str:
    return PROMPT if provider == "echo" else sc.TEXT


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("prefix", ["/v1", "/openai"])
def test_create(every_provider: EveryProvider, prefix: str, provider: str) -> None:
    with every_provider.client(prefix) as client:
        completion = client.completions.create(model=f"{provider}/model-text", prompt=PROMPT, max_tokens=20)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == expected_text(provider)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("prefix", ["/v1", "/openai"])
def test_stream(every_provider: EveryProvider, prefix: str, provider: str) -> None:
    with every_provider.client(prefix) as client:
        chunks = list(
            client.completions.create(
                model=f"{provider}/model-text",
                prompt=PROMPT,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    texts = [chunk.choices[0].text for chunk in chunks if chunk.choices and chunk.choices[0].text]
    assert "".join(texts) == expected_text(provider)
    assert len(texts) >= 2, "the answer arrived in one piece: not streamed"
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stream_usage_chunk_only_when_asked(every_provider: EveryProvider) -> None:
    with every_provider.client() as client:
        chunks = list(client.completions.create(model="openai/model-text", prompt=PROMPT, stream=True))
    assert all(chunk.choices for chunk in chunks)  # the gateway asked for usage; the client did not
    sent = every_provider.last("openai")
    assert sent.path == "/v1/completions" and sent.json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("status", [400, 429, 500])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_upstream_errors(every_provider: EveryProvider, provider: str, status: int) -> None:
    with every_provider.client() as client, pytest.raises(openai.APIStatusError) as raised:
        client.completions.create(model=f"{provider}/error-{status}", prompt=PROMPT)
    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict) and sc.ERROR_MESSAGE in raised.value.body["message"]


def test_a_stream_failing_midway_ends_with_an_error(every_provider: EveryProvider) -> None:
    with every_provider.client() as client, pytest.raises(openai.APIError) as raised:
        list(client.completions.create(model="openai/fail-midstream", prompt=PROMPT, stream=True))
    assert sc.ERROR_MESSAGE in raised.value.message


def test_what_only_openai_can_do_passes_through_to_it(every_provider: EveryProvider) -> None:
    with every_provider.client("/openai") as client:
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt=["a", "b"], echo=True, suffix="!", logprobs=2, best_of=2
        )
    sent = every_provider.last("openai").json
    assert sent["prompt"] == ["a", "b"] and sent["echo"] is True and sent["best_of"] == 2
    assert sent["model"] == "gpt-3.5-turbo-instruct"


@pytest.mark.parametrize(("field", "value"), [("echo", True), ("suffix", "!"), ("prompt", [1, 2, 3])])
def test_and_is_a_400_naming_the_field_elsewhere(
    every_provider: EveryProvider, field: str, value: object
) -> None:
    with every_provider.client() as client, pytest.raises(openai.BadRequestError) as raised:
        client.completions.create(**{"model": "anthropic/model-text", "prompt": PROMPT, field: value})  # type: ignore[call-overload]
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == field


# --- Azure-style and /openai drop-in paths --------------------------------------------------------


def azure(every_provider: EveryProvider) -> openai.AzureOpenAI:
    """The Azure client with the gateway as its endpoint: ``/openai/deployments/{model}/...``."""
    return openai.AzureOpenAI(
        azure_endpoint=every_provider.gateway.url, api_key="k", api_version="2024-10-21", max_retries=0
    )


@pytest.mark.parametrize(
    ("deployment", "upstream_model"),
    [("openai/gpt-4o", "gpt-4o"), ("my-gpt-deployment", "my-gpt-deployment")],  # provider/model; bare
)
def test_azure_client_chat(every_provider: EveryProvider, deployment: str, upstream_model: str) -> None:
    with azure(every_provider) as client:
        response = client.chat.completions.create(model=deployment, messages=USER)
    assert response.choices[0].message.content == sc.TEXT
    sent = every_provider.last("openai")
    assert (sent.path, sent.json["model"]) == ("/v1/chat/completions", upstream_model)


def test_azure_client_stream_and_embeddings(every_provider: EveryProvider) -> None:
    with azure(every_provider) as client:
        stream = client.chat.completions.create(model="echo/deployment", messages=USER, stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == PROMPT
        assert len(client.embeddings.create(model="echo/embedder", input="x").data[0].embedding) == 8


@pytest.mark.parametrize("prefix", ["/openai", "/openai/v1"])
def test_openai_prefix_chat_with_a_bare_model(every_provider: EveryProvider, prefix: str) -> None:
    with every_provider.client(prefix) as client:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert response.choices[0].message.content == sc.TEXT
    assert every_provider.last("openai").json["model"] == "gpt-4o-mini"
