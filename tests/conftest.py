"""Shared fixtures: fake upstreams on real sockets, and the gateway in front of them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes import openai as fake_openai
from tests.fakes.server import Recorder, serve_in_thread

# LiteLLM (a client in tests/api) fetches its model price list on import unless told to use its own.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

TEST_KEYS = {
    "ASBRU_TEST_OPENAI_KEY": "sk-test-openai-0123456789abcdef",
    "ASBRU_TEST_OPENAI_KEY_2": "sk-test-openai-second-key-987654",
    "ASBRU_TEST_ANTHROPIC_KEY": "sk-ant-test-0123456789abcdef",
    "ASBRU_TEST_GEMINI_KEY": "gm-test-0123456789abcdef",
    "ASBRU_TEST_AZURE_KEY": "az-test-0123456789abcdef",
}


@pytest.fixture(autouse=True)
def _test_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def openai_upstream() -> Iterator[tuple[str, Recorder]]:
    """A fake OpenAI server: (base URL without /v1, recorder of what it received)."""
    recorder = Recorder()
    with serve_in_thread(fake_openai.make_app(recorder)) as url:
        yield url, recorder
