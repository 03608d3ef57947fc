"""One gateway per test module in front of every provider type (each behind its fake) and echo."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from tests.conformance.adapters import Upstreams, all_upstreams
from tests.conftest import TEST_KEYS
from tests.fakes.server import RecordedRequest
from tests.gateway_server import RunningGateway, run_gateway


@dataclass
class EveryProvider:
    gateway: RunningGateway
    upstreams: Upstreams

    def client(self, prefix: str = "/v1") -> openai.OpenAI:
        """An ``openai`` SDK client with ``base_url`` = the gateway + ``prefix``."""
        return openai.OpenAI(base_url=self.gateway.url + prefix, api_key="client-key", max_retries=0)

    def last(self, provider: str, path: str | None = None) -> RecordedRequest:
        """The last request that provider's fake received (on ``path``, if given)."""
        requests = self.upstreams.recorders[provider].requests
        return [item for item in requests if path is None or item.path == path][-1]


@pytest.fixture(scope="module")
def every_provider() -> Iterator[EveryProvider]:
    with pytest.MonkeyPatch.context() as patch:  # the function-scoped key fixture comes too late here
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with all_upstreams() as upstreams, run_gateway({"providers": upstreams.providers}) as gateway:
            yield EveryProvider(gateway, upstreams)
