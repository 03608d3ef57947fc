"""Schemathesis against the gateway's own OpenAPI document: generated requests never get a 5xx.

Bounded: a fixed number of examples per operation, positive and negative (schema-violating) data,
against a gateway serving the echo provider (routes and ``provider/model`` names exist, so many
generated requests reach the provider, not only the validation). Issue 9, section 4.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from asbru_gateway.api.router import openapi_document
from tests.gateway_server import RunningGateway, run_gateway

CONFIG = {
    "providers": [{"name": "echo", "type": "echo", "models": ["m"]}],
    "routes": [{"name": "chat", "targets": [{"provider": "echo", "model": "m"}]}],
}

schema = schemathesis.openapi.from_dict(orjson.loads(openapi_document()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with run_gateway(CONFIG) as running:
        yield running


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_gets_a_server_error(case: schemathesis.Case, gateway: RunningGateway) -> None:
    response = case.call(base_url=gateway.url, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:500]}"
    assert response.headers.get("x-request-id")


def test_the_document_is_served(gateway: RunningGateway) -> None:
    document = httpx.get(gateway.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/v1/chat/completions" in document["paths"]
