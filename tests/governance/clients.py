"""One chat call per client dialect with a virtual key, as each SDK sends its key: the shared helpers
of the governance tests (in-process gateways and separate ``asbru serve`` processes alike)."""

from __future__ import annotations

from dataclasses import dataclass

import anthropic
import httpx
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

DIALECTS = ("openai", "anthropic", "gemini")


@dataclass
class Result:
    status: int
    text: str = ""
    headers: dict[str, str] | None = None


def call(
    dialect: str,
    url: str,
    key: str,
    model: str = "echo/demo",
    text: str = "hello world",
    *,
    stream: bool = False,
) -> Result:
    """One request through ``dialect``'s SDK (no SDK retries); the HTTP status and the answer's text."""
    try:
        if dialect == "openai":
            return _openai(url, key, model, text, stream)
        if dialect == "anthropic":
            return _anthropic(url, key, model, text, stream)
        return _gemini(url, key, model, text, stream)
    except openai.APIStatusError as error:
        return Result(error.status_code, error.message, dict(error.response.headers))
    except anthropic.APIStatusError as error:
        return Result(error.status_code, error.message, dict(error.response.headers))
    except genai_errors.APIError as error:
        return Result(error.code, str(error.message))


def _openai(url: str, key: str, model: str, text: str, stream: bool) -> Result:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": text}]
    with openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as client:
        if stream:
            pieces = []
            for chunk in client.chat.completions.create(model=model, messages=messages, stream=True):
                pieces += [choice.delta.content or "" for choice in chunk.choices]
            return Result(200, "".join(pieces))
        raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
        return Result(200, raw.parse().choices[0].message.content or "", dict(raw.headers))


def _anthropic(url: str, key: str, model: str, text: str, stream: bool) -> Result:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": text}]
    with anthropic.Anthropic(base_url=url + "/anthropic", api_key=key, max_retries=0) as client:
        if stream:
            with client.messages.stream(model=model, max_tokens=64, messages=messages) as events:
                return Result(200, "".join(events.text_stream))
        raw = client.messages.with_raw_response.create(model=model, max_tokens=64, messages=messages)
    message = raw.parse()
    return Result(
        200, "".join(block.text for block in message.content if block.type == "text"), dict(raw.headers)
    )


def _gemini(url: str, key: str, model: str, text: str, stream: bool) -> Result:
    options = genai_types.HttpOptions(
        base_url=url + "/genai", retry_options=genai_types.HttpRetryOptions(attempts=1)
    )
    client = genai.Client(api_key=key, http_options=options)
    if stream:
        return Result(
            200,
            "".join(
                chunk.text or ""
                for chunk in client.models.generate_content_stream(model=model, contents=text)
            ),
        )
    return Result(200, client.models.generate_content(model=model, contents=text).text or "")


def raw_chat(
    url: str, headers: dict[str, str], model: str = "echo/demo", *, query: str = ""
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello world"}]}
    return httpx.post(f"{url}/v1/chat/completions{query}", json=body, headers=headers, timeout=10)
