"""OpenAI's legacy text completions: ``POST /completions`` (``text_completion`` objects and chunks).

An OpenAI provider takes the body as it is (``native``). For every other provider a prompt is
one user message of a chat: that holds for one prompt given as text. What a chat cannot express is
a 400 naming the field: token-id prompts and several prompts at once, ``suffix`` (insertion),
``echo`` (the prompt repeated in the answer), ``logprobs``, ``best_of`` and ``logit_bias``. The
rest maps one to one onto the core (OpenAI's chat API has the same fields under the same names).

Agent mode (MCP tools the gateway runs itself) works here too when the request is translated: a
stream shows each tool step as a chunk of its own, ``{"object": "text_completion", "choices": [],
"mcp_call": {...}}``, as the chat dialect does; a complete answer has the final text only (the
``x-asbru-agent-steps`` header counts the rounds). A text completion cannot carry a tool call, so
such a request is offered only the tools the gateway runs (``mcp.hub``); when a limit stops the
loop, the answer's text is the model's (often empty) with ``finish_reason: "tool_calls"``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from asbru_gateway.core.formats import OPENAI_COMPLETIONS
from asbru_gateway.core.reply import Reply, StreamItem
from asbru_gateway.core.request import CHAT, LLMRequest
from asbru_gateway.core.schema import Chunk
from asbru_gateway.dialects.base import (
    STEP_KEY,
    Endpoint,
    Incoming,
    core_chunks,
    native_request,
    parse_object,
    require_model,
    stream_flag,
)
from asbru_gateway.dialects.openai_chat import DONE_EVENT, OpenAIChatRenderer, model_list, with_extra_fields
from asbru_gateway.errors import GatewayError, InvalidRequestError, UnsupportedError, UpstreamProtocolError

_COPIED = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "user",
        "stream_options",
    }
)
"""Fields with the same name and meaning in the core (chat) schema."""
_CHAT_ONLY_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "echo": (False,),
    "best_of": (1,),
    "suffix": ("",),
    "logprobs": (),
    "logit_bias": ({},),
}
"""Fields a chat cannot express, with the values that ask for nothing (accepted)."""


class OpenAICompletionsDialect:
    id = "openai.completions"
    family = "openai"
    stream_content_type = b"text/event-stream; charset=utf-8"
    endpoints: tuple[Endpoint, ...] = (Endpoint("POST", "/completions", CHAT),)

    def parse(self, incoming: Incoming) -> LLMRequest:
        body = parse_object(incoming.body)
        if incoming.path_model is not None:  # Azure-style /openai/deployments/{id}/completions
            body["model"] = incoming.path_model
        model = require_model(body)
        if body.get("prompt") is None:
            raise InvalidRequestError("you must provide a prompt parameter", param="prompt")
        return native_request(
            incoming,
            body,
            dialect=self.id,
            model=model,
            stream=stream_flag(body),
            native_format=OPENAI_COMPLETIONS,
            to_core=to_core,
        )

    def render(self, request: LLMRequest, reply: Reply) -> bytes:
        if reply.format == OPENAI_COMPLETIONS:
            return with_extra_fields(reply.body, request)
        return with_extra_fields(orjson.dumps(from_completion(reply.data)), request)

    def stream(self, request: LLMRequest) -> CompletionsStreamRenderer:
        return CompletionsStreamRenderer(passthrough=request.passthrough)

    def error(self, error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
        return error.status, error.to_body()

    def models(self, models: list[tuple[str, str]]) -> bytes:
        return model_list(models)


def to_core(body: dict[str, Any]) -> dict[str, Any]:
    """The core chat body: the prompt as one user message, same-named fields copied."""
    core: dict[str, Any] = {"model": body["model"], "messages": [{"role": "user", "content": _prompt(body)}]}
    for name, value in body.items():
        if value is None or name in ("model", "prompt"):
            continue
        if name == "stream":
            if value is True:
                core["stream"] = True
        elif name in _COPIED:
            core[name] = value
        elif name in _CHAT_ONLY_DEFAULTS:
            if value not in _CHAT_ONLY_DEFAULTS[name]:
                raise UnsupportedError(
                    f"{name} has no equivalent in a chat; it can be passed only to an OpenAI provider",
                    param=name,
                )
        else:
            raise UnsupportedError(
                f"{name} cannot be translated for this provider; it can be passed only to an OpenAI provider",
                param=name,
            )
    return core


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(part, str) for part in prompt):
        raise UnsupportedError(
            "several prompts in one request can be passed only to an OpenAI provider", param="prompt"
        )
    if isinstance(prompt, list) and prompt:
        raise UnsupportedError(
            "token-id prompts can be passed only to an OpenAI provider; send the prompt as text",
            param="prompt",
        )
    raise InvalidRequestError("prompt must be a string or an array of strings", param="prompt")


def from_completion(completion: dict[str, Any]) -> dict[str, Any]:
    """A core ``chat.completion`` as a ``text_completion``."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        raise UpstreamProtocolError("upstream answer has no choices")
    out: dict[str, Any] = {
        "id": _completion_id(completion),
        "object": "text_completion",
        "created": completion.get("created") or int(time.time()),
        "model": completion.get("model"),
        "choices": [_choice(choice) for choice in choices],
    }
    if completion.get("usage") is not None:
        out["usage"] = completion["usage"]
    return out


def _choice(choice: object) -> dict[str, Any]:
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        raise UpstreamProtocolError("upstream answer has a choice without a message")
    content = message.get("content")
    return {
        "text": content if isinstance(content, str) else "",
        "index": choice.get("index", 0),
        "logprobs": None,
        "finish_reason": choice.get("finish_reason"),
    }


def _completion_id(completion: dict[str, Any]) -> str:
    upstream = completion.get("id")
    return "cmpl-" + upstream.removeprefix("chatcmpl-") if isinstance(upstream, str) else "cmpl-asbru"


class CompletionsStreamRenderer(OpenAIChatRenderer):
    """Core chunks -> ``text_completion`` chunks; the upstream's own chunks when passed through.

    The end (``[DONE]``, once) and the error event are the chat renderer's: the same SSE dialect.
    """

    __slots__ = ("_passthrough",)

    def __init__(self, *, passthrough: bool) -> None:
        super().__init__()
        self._passthrough = passthrough

    def items(self, items: list[StreamItem]) -> bytes:
        if self._passthrough:
            body = b"".join(item for item in items if isinstance(item, bytes))
            if body.endswith(DONE_EVENT):
                self._done_sent = True
            return body
        out = []
        for chunk in core_chunks(items):
            rendered = _chunk(chunk)
            if rendered is not None:
                out.append(b"data: " + orjson.dumps(rendered) + b"\n\n")
        return b"".join(out)


def _chunk(chunk: Chunk) -> dict[str, Any] | None:
    """A ``text_completion`` chunk, or None for a chunk with nothing a completion shows (a role).
    An agent-mode tool step is kept as it is, beside no choices (the chat dialect's rendering)."""
    choices = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if not content and not choice.get("finish_reason"):
            continue
        choices.append(
            {
                "text": content if isinstance(content, str) else "",
                "index": choice.get("index", 0),
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
        )
    step = chunk.get(STEP_KEY)
    if not choices and chunk.get("usage") is None and step is None:
        return None
    out: dict[str, Any] = {
        "id": _completion_id(dict(chunk)),
        "object": "text_completion",
        "created": chunk.get("created") or int(time.time()),
        "model": chunk.get("model"),
        "choices": choices,
    }
    if chunk.get("usage") is not None:
        out["usage"] = chunk["usage"]
    if step is not None:
        out[STEP_KEY] = step
    return out
