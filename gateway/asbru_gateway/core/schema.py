"""The core content schema: what a chat request, a reply and a stream chunk look like inside Asbru.

Every ingress dialect translates into this schema (or wraps its own body for pass-through), every
provider translates out of it, and every plugin reads it. Its shape is OpenAI's chat completions
schema, deliberately: it is the lingua franca that every provider and SDK already maps to (Bifrost's
core schema makes the same choice), so the most common path needs no translation at all. Two
documented extensions carry what OpenAI cannot express but other dialects can: ``top_k`` (Anthropic,
Gemini, vLLM) and ``thinking`` (a reasoning budget, ``{"budget_tokens": N}``).

The types are ``TypedDict``s: mypy checks every access, and at run time they are plain dicts, so the
schema costs nothing per request (a pydantic model here would cost ~0.6 ms per request, measured).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Role = Literal["system", "developer", "user", "assistant", "tool"]


class FunctionCall(TypedDict):
    name: str
    arguments: str
    """JSON text, as the model produced it (not guaranteed to parse)."""


class ToolCall(TypedDict, total=False):
    id: str
    type: Literal["function"]
    function: FunctionCall
    index: int
    """Streams only: which tool call a delta belongs to."""


class ImageURL(TypedDict, total=False):
    url: str
    """``https://...`` or a ``data:<mime>;base64,...`` URL."""
    detail: str


class ContentPart(TypedDict, total=False):
    type: Literal["text", "image_url", "input_audio", "file"]
    text: str
    image_url: ImageURL


class Message(TypedDict, total=False):
    role: Role
    content: str | list[ContentPart] | None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str


class FunctionSpec(TypedDict, total=False):
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool


class Tool(TypedDict):
    type: Literal["function"]
    function: FunctionSpec


class ChatBody(TypedDict, total=False):
    """A chat request (``operation == "chat"``), and for ``count_tokens`` the prompt to count."""

    model: str
    messages: list[Message]
    tools: list[Tool]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    max_completion_tokens: int
    stop: str | list[str]
    n: int
    seed: int
    presence_penalty: float
    frequency_penalty: float
    response_format: dict[str, Any]
    stream: bool
    stream_options: dict[str, Any]
    user: str
    thinking: dict[str, Any]


class EmbeddingsBody(TypedDict, total=False):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int
    encoding_format: str


class UsageJSON(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]


class Choice(TypedDict, total=False):
    index: int
    message: Message
    finish_reason: str | None
    logprobs: Any


class Completion(TypedDict, total=False):
    """A complete chat answer (``chat.completion``)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: UsageJSON


class Delta(TypedDict, total=False):
    role: str
    content: str | None
    tool_calls: list[ToolCall]
    reasoning_content: str


class ChunkChoice(TypedDict, total=False):
    index: int
    delta: Delta
    finish_reason: str | None
    logprobs: Any


class Chunk(TypedDict, total=False):
    """One streamed piece of an answer (``chat.completion.chunk``)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageJSON | None


FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")
"""The core's finish reasons; dialects map their own stop reasons onto these and back."""
