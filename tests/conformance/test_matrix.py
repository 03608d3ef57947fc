"""The conformance matrix: every ingress dialect x every provider type x {JSON, stream, tools, error}.

One gateway serves every provider type (each behind a fake speaking its wire format, plus echo);
each dialect's official SDK calls it (``dialect_clients.py``). What must hold in every cell: the
answer's text and stop reason arrive as the provider gave them, a stream arrives in several pieces,
a tool call keeps its name and arguments (JSON and streamed), and an upstream error reaches the
client with the upstream's status and message, in the client's own error shape.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.adapters import ADAPTERS, all_upstreams
from tests.conformance.dialect_clients import CLIENTS, QUESTION, DialectClient
from tests.conftest import TEST_KEYS
from tests.fakes import scenarios as sc
from tests.gateway_server import run_gateway

PROVIDERS = [adapter.name for adapter in ADAPTERS]


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:  # the function-scoped key fixture comes too late here
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with all_upstreams() as upstreams, run_gateway({"providers": upstreams.providers}) as gateway:
            yield gateway.url


@pytest.fixture(params=CLIENTS, ids=lambda client: client.id)
def client(request: pytest.FixtureRequest) -> DialectClient:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_json(client: DialectClient, gateway_url: str, provider: str) -> None:
    answer = client.chat(gateway_url, f"{provider}/model-text")
    assert answer.text == (QUESTION if provider == "echo" else sc.TEXT)
    assert answer.finish == "stop"


@pytest.mark.parametrize("provider", [*PROVIDERS, "echo"])
def test_stream(client: DialectClient, gateway_url: str, provider: str) -> None:
    answer = client.stream(gateway_url, f"{provider}/model-text")
    assert answer.text == (QUESTION if provider == "echo" else sc.TEXT)
    assert answer.finish == "stop"
    assert answer.pieces >= 2, "the answer arrived in one piece: not streamed"


TOOL_CLIENTS = [client for client in CLIENTS if getattr(client, "tools", True)]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("tool_client", TOOL_CLIENTS, ids=lambda client: client.id)
def test_tools(tool_client: DialectClient, gateway_url: str, provider: str, stream: bool) -> None:
    call = tool_client.tool_call(gateway_url, f"{provider}/model-tool", stream=stream)
    assert call.name == sc.TOOL_NAME
    assert call.arguments == {"city": "Paris"}
    assert call.finish == "tool_calls"


@pytest.mark.parametrize("status", [400, 429, 500])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_error(client: DialectClient, gateway_url: str, provider: str, status: int) -> None:
    failure = client.error(gateway_url, f"{provider}/error-{status}")
    assert failure.status == status
    assert sc.ERROR_MESSAGE in failure.message
