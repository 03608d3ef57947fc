"""What the Anthropic-client tests share: the weather tool in Anthropic's shape, and every fake upstream
running for a whole module (with the test keys set, which the function-scoped fixture sets too late)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conformance.adapters import Upstreams, all_upstreams
from tests.conformance.dialect_clients import WEATHER_SCHEMA
from tests.conftest import TEST_KEYS
from tests.fakes import scenarios as sc

WEATHER: Any = {"name": sc.TOOL_NAME, "description": "Weather in a city", "input_schema": WEATHER_SCHEMA}


@contextmanager
def upstreams_with_keys() -> Iterator[Upstreams]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with all_upstreams() as running:
            yield running
