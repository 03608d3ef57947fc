"""The ``litellm`` SDK as a client of the gateway, through the ``/litellm`` drop-in prefix.

LiteLLM calls an OpenAI-compatible server as ``model="openai/<name>"`` with ``api_base`` set: it
strips its ``openai/`` prefix and POSTs ``{api_base}/chat/completions`` with the official ``openai``
SDK, so ``<name>`` is an Asbru model (a route, ``provider/model``, or a bare name for the OpenAI
provider under the prefix). ``tests/conftest.py`` sets ``LITELLM_LOCAL_MODEL_COST_MAP`` so that
importing LiteLLM reads its bundled price list instead of fetching one; an audit hook proves that no
call of this module leaves the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
from collections.abc import Iterator
from typing import Any

import litellm
import pytest

from tests.conformance.dialect_clients import WEATHER_SCHEMA
from tests.conftest import TEST_KEYS
from tests.fakes import openai as fake_openai
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import run_gateway

_REMOTE: list[object] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Record any connection to an address that is not loopback (a unit test must not make one)."""
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1]:
        try:
            if not ipaddress.ip_address(args[1][0]).is_loopback:
                _REMOTE.append(args[1])
        except ValueError:
            _REMOTE.append(args[1])


sys.addaudithook(_audit)

TOOLS: Any = [
    {
        "type": "function",
        "function": {"name": sc.TOOL_NAME, "description": "Weather by city", "parameters": WEATHER_SCHEMA},
    }
]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module", autouse=True)
def _event_loop_for_litellm() -> Iterator[None]:
    """LiteLLM's sync calls ask for ``asyncio.get_event_loop()``, which would create a loop nobody
    closes (a ResourceWarning in whichever later test the garbage collector runs): lend it one."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:  # the function-scoped key fixture comes too late here
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with serve_in_thread(fake_openai.make_app(Recorder())) as upstream:
            config = {
                "providers": [{"name": "echo", "type": "echo"}, fake_openai.provider_config(upstream)],
                "routes": [{"name": "smart", "targets": [{"provider": "openai", "model": "gpt-4o"}]}],
            }
            with run_gateway(config) as gateway:
                yield gateway.url


@pytest.mark.parametrize("base", ["/litellm/v1", "/litellm"])
def test_completion_through_echo(gateway_url: str, base: str) -> None:
    response: Any = litellm.completion(
        model="openai/echo/anything",
        api_base=gateway_url + base,
        api_key="client-key",
        messages=[{"role": "user", "content": "ping pong"}],
    )
    assert response.choices[0].message.content == "ping pong"
    assert response.choices[0].finish_reason == "stop"


def test_completion_through_a_route_and_a_bare_model(gateway_url: str) -> None:
    for model in ("smart", "gpt-4o-mini"):  # a route; a bare name for the prefix's OpenAI provider
        response: Any = litellm.completion(
            model=f"openai/{model}", api_base=gateway_url + "/litellm/v1", api_key="k", messages=USER
        )
        assert response.choices[0].message.content == sc.TEXT
        assert response.usage.completion_tokens == sc.COMPLETION_TOKENS


def test_streaming(gateway_url: str) -> None:
    chunks = list(
        litellm.completion(
            model="openai/openai/model-text",
            api_base=gateway_url + "/litellm/v1",
            api_key="client-key",
            messages=USER,
            stream=True,
        )
    )
    texts = [
        chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content
    ]
    assert "".join(texts) == sc.TEXT
    assert len(texts) >= 2


def test_tool_call(gateway_url: str) -> None:
    response: Any = litellm.completion(
        model="openai/openai/model-tool",
        api_base=gateway_url + "/litellm",
        api_key="client-key",
        messages=USER,
        tools=TOOLS,
    )
    call = response.choices[0].message.tool_calls[0]
    assert call.function.name == sc.TOOL_NAME
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_upstream_error_reaches_litellm_with_its_status(gateway_url: str) -> None:
    with pytest.raises(litellm.RateLimitError) as raised:
        litellm.completion(
            model="openai/openai/error-429",
            api_base=gateway_url + "/litellm/v1",
            api_key="client-key",
            messages=USER,
            num_retries=0,
        )
    assert sc.ERROR_MESSAGE in str(raised.value)


def test_nothing_left_the_machine() -> None:
    assert _REMOTE == []
