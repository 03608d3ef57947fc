"""Every provider type behind a fake upstream that speaks its wire format, for the conformance suites."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai as fake_openai
from tests.fakes.server import Recorder, serve_in_thread


@dataclass(frozen=True)
class Adapter:
    name: str
    make_app: Callable[[Recorder], web.Application] | None
    provider: Callable[[str], dict[str, Any]]


def _azure(url: str) -> dict[str, Any]:
    return {
        "name": "azure",
        "type": "azure",
        "base_url": url,
        "api_version": "2024-10-21",
        "keys": [{"name": "k1", "secret": "env:ASBRU_TEST_AZURE_KEY"}],
    }


ADAPTERS = [
    Adapter("openai", fake_openai.make_app, fake_openai.provider_config),
    Adapter("groq", fake_openai.make_app, lambda url: fake_openai.provider_config(url, "groq", type_="groq")),
    Adapter("azure", lambda recorder: fake_openai.make_app(recorder, azure=True), _azure),
    Adapter("anthropic", fake_anthropic.make_app, fake_anthropic.provider_config),
    Adapter("gemini", fake_gemini.make_app, fake_gemini.provider_config),
]
"""Provider types with a fake upstream (``groq`` stands for the whole OpenAI-compatible family)."""

ECHO = Adapter("echo", None, lambda url: {"name": "echo", "type": "echo"})
"""The built-in echo provider: no upstream; answers with the last user message."""


@dataclass
class Upstreams:
    """Every adapter's fake, running: provider configs for one gateway, and what each fake received."""

    providers: list[dict[str, Any]]
    recorders: dict[str, Recorder]


@contextmanager
def all_upstreams(*, retries: int = 0) -> Iterator[Upstreams]:
    with ExitStack() as stack:
        providers: list[dict[str, Any]] = []
        recorders: dict[str, Recorder] = {}
        for adapter in (*ADAPTERS, ECHO):
            url = ""
            if adapter.make_app is not None:
                recorder = recorders[adapter.name] = Recorder()
                url = stack.enter_context(serve_in_thread(adapter.make_app(recorder)))
            providers.append({**adapter.provider(url), "network": {"max_retries": retries}})
        yield Upstreams(providers, recorders)
