"""The legacy Completions dialect as pure translation: prompt -> core chat, chat answer -> text_completion."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asbru_gateway.core.formats import OPENAI_COMPLETIONS
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.dialects.openai_completions import (
    CompletionsStreamRenderer,
    OpenAICompletionsDialect,
    to_core,
)
from asbru_gateway.errors import InvalidRequestError, UpstreamError
from tests.dialects.incoming import incoming

DIALECT = OpenAICompletionsDialect()


def parse(body: dict[str, Any]) -> LLMRequest:
    return DIALECT.parse(incoming("/completions", body, family="openai"))


def test_parse_keeps_the_body_for_pass_through() -> None:
    request = parse({"model": "m", "prompt": "Say hi", "stream": True, "fallbacks": ["echo/x"], "echo": True})
    assert request.native == {"model": "m", "prompt": "Say hi", "stream": True, "echo": True}
    assert request.native_format == OPENAI_COMPLETIONS
    assert (request.stream, request.fallbacks, request.family) == (True, ["echo/x"], "openai")


def test_a_prompt_is_required() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse({"model": "m"})
    assert raised.value.param == "prompt"


@pytest.mark.parametrize("prompt", ["Say hi", ["Say hi"]])
def test_one_text_prompt_is_one_user_message(prompt: Any) -> None:
    body = to_core(
        {
            "model": "m",
            "prompt": prompt,
            "max_tokens": 5,
            "temperature": 0,
            "stop": ["\n"],
            "stream": True,
            "stream_options": {"include_usage": True},
            "echo": False,
            "best_of": 1,
            "logit_bias": {},
            "suffix": None,
        }
    )
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 5,
        "temperature": 0,
        "stop": ["\n"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt", [1, 2, 3]),
        ("prompt", [[1, 2]]),
        ("prompt", ["a", "b"]),
        ("prompt", 5),
        ("suffix", "end"),
        ("echo", True),
        ("logprobs", 2),
        ("best_of", 3),
        ("logit_bias", {"50256": -100}),
        ("unheard_of", 1),
    ],
)
def test_what_a_chat_cannot_express_is_a_400_naming_the_field(field: str, value: Any) -> None:
    body = {"model": "m", "prompt": "x", field: value}
    with pytest.raises(InvalidRequestError) as raised:
        to_core(body)
    assert raised.value.status == 400
    assert raised.value.param == field


def test_a_chat_answer_renders_as_a_text_completion() -> None:
    completion = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 7,
        "model": "up",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    out = orjson.loads(DIALECT.render(parse({"model": "m", "prompt": "x"}), Reply(data=completion)))
    assert out == {
        "id": "cmpl-abc",
        "object": "text_completion",
        "created": 7,
        "model": "up",
        "choices": [{"text": "Hi", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }


def test_a_native_answer_passes_through() -> None:
    body = b'{"id":"cmpl-up","object":"text_completion","choices":[]}'
    assert (
        DIALECT.render(parse({"model": "m", "prompt": "x"}), Reply(body, format=OPENAI_COMPLETIONS)) == body
    )


def _events(raw: bytes) -> list[Any]:
    return [
        block.removeprefix(b"data: ") if b"[DONE]" in block else orjson.loads(block.removeprefix(b"data: "))
        for block in raw.split(b"\n\n")
        if block
    ]


def test_core_chunks_stream_as_text_completion_chunks_then_done() -> None:
    renderer = CompletionsStreamRenderer(passthrough=False)
    role = {"id": "chatcmpl-1", "model": "up", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    text = {"id": "chatcmpl-1", "model": "up", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    stop = {
        "id": "chatcmpl-1",
        "model": "up",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    usage = {"id": "chatcmpl-1", "model": "up", "choices": [], "usage": {"prompt_tokens": 1}}
    out = _events(renderer.items([role, text]) + renderer.items([stop, usage]) + renderer.end(None))
    assert [event["choices"] for event in out[:-1]] == [
        [{"text": "Hi", "index": 0, "logprobs": None, "finish_reason": None}],
        [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert all(event["object"] == "text_completion" and event["id"] == "cmpl-1" for event in out[:-1])
    assert out[2]["usage"] == {"prompt_tokens": 1}
    assert out[-1] == b"[DONE]"


def test_an_agent_step_is_a_chunk_of_its_own_with_no_choices() -> None:
    step = {"type": "mcp_call", "id": "call_1", "name": "add", "status": "in_progress"}
    chunk = {"id": "chatcmpl-1", "model": "up", "choices": [], "mcp_call": step}
    [event] = _events(CompletionsStreamRenderer(passthrough=False).items([chunk]))
    assert event["object"] == "text_completion" and event["id"] == "cmpl-1"
    assert event["choices"] == [] and event["mcp_call"] == step


def test_passed_through_chunks_are_forwarded_and_done_is_not_doubled() -> None:
    renderer = CompletionsStreamRenderer(passthrough=True)
    native = b'data: {"object":"text_completion","choices":[{"text":"x"}]}\n\ndata: [DONE]\n\n'
    assert renderer.items([native]) == native
    assert renderer.end(None) == b""


def test_an_error_mid_stream_is_an_openai_error_event() -> None:
    raw = CompletionsStreamRenderer(passthrough=False).error(UpstreamError("boom", status=502))
    assert orjson.loads(raw.removeprefix(b"data: "))["error"]["message"] == "boom"
