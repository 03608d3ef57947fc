"""One client per ingress dialect, each driving the gateway with that dialect's official SDK.

The conformance matrix (``test_matrix.py``) runs every client against every provider type with the
same four scenarios (``tests/fakes/scenarios.py``): a JSON answer, a stream, a tool call (JSON and
streamed), and an upstream error. Each client reports in neutral terms (``Answer``, ``ToolCall``,
``Failure``) so the assertions are the same for every dialect; how each dialect says "stop" or
"tool use" is mapped here, once per client.

To add a dialect: write a class with the ``DialectClient`` methods and add it to ``CLIENTS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import anthropic
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.fakes import scenarios as sc

QUESTION = "What is the weather in Paris?"
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@dataclass
class Answer:
    text: str
    finish: str
    """In core terms: ``stop``, ``length``, ``tool_calls``, ``content_filter``."""
    pieces: int = 1
    """Streams: how many events carried text (more than one proves the answer was streamed)."""
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    finish: str


@dataclass
class Failure:
    status: int
    message: str


class DialectClient(Protocol):
    id: str
    tools: bool
    """Whether the dialect has tool calls (legacy completions has none): the matrix runs the tools
    cells only for clients that do (a client class without this flag counts as having them)."""

    def chat(self, gateway_url: str, model: str) -> Answer: ...

    def stream(self, gateway_url: str, model: str) -> Answer: ...

    def tool_call(self, gateway_url: str, model: str, *, stream: bool) -> ToolCall: ...

    def error(self, gateway_url: str, model: str) -> Failure:
        """Call a model the fake answers with an error; return what the SDK raised."""
        ...


class OpenAIChatClient:
    """``openai`` SDK, ``chat.completions`` at ``/v1``."""

    id = "openai.chat"
    tools = True

    def _client(self, gateway_url: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=gateway_url + "/v1", api_key="client-key", max_retries=0)

    def chat(self, gateway_url: str, model: str) -> Answer:
        with self._client(gateway_url) as client:
            response = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": QUESTION}]
            )
        usage = response.usage
        return Answer(
            response.choices[0].message.content or "",
            response.choices[0].finish_reason,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
        )

    def stream(self, gateway_url: str, model: str) -> Answer:
        text, finish, pieces = "", "", 0
        with self._client(gateway_url) as client:
            for chunk in client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": QUESTION}], stream=True
            ):
                if not chunk.choices:
                    continue
                content = chunk.choices[0].delta.content
                if content:
                    text, pieces = text + content, pieces + 1
                finish = chunk.choices[0].finish_reason or finish
        return Answer(text, finish, pieces)

    def tool_call(self, gateway_url: str, model: str, *, stream: bool) -> ToolCall:
        tools: Any = [
            {
                "type": "function",
                "function": {"name": sc.TOOL_NAME, "description": "Weather", "parameters": WEATHER_SCHEMA},
            }
        ]
        messages: Any = [{"role": "user", "content": QUESTION}]
        with self._client(gateway_url) as client:
            if not stream:
                response = client.chat.completions.create(model=model, messages=messages, tools=tools)
                call = (response.choices[0].message.tool_calls or [])[0]
                assert call.type == "function"
                return ToolCall(
                    call.function.name, json.loads(call.function.arguments), response.choices[0].finish_reason
                )
            name, arguments, finish = "", "", ""
            for chunk in client.chat.completions.create(
                model=model, messages=messages, tools=tools, stream=True
            ):
                if not chunk.choices:
                    continue
                for delta in chunk.choices[0].delta.tool_calls or []:
                    if delta.function and delta.function.name:
                        name = delta.function.name
                    if delta.function and delta.function.arguments:
                        arguments += delta.function.arguments
                finish = chunk.choices[0].finish_reason or finish
        return ToolCall(name, json.loads(arguments), finish)

    def error(self, gateway_url: str, model: str) -> Failure:
        with self._client(gateway_url) as client:
            try:
                client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}])
            except openai.APIStatusError as error:
                body = error.body if isinstance(error.body, dict) else {}
                return Failure(error.status_code, str(body.get("message", "")))
        raise AssertionError("the SDK did not raise")


class AnthropicClient:
    """``anthropic`` SDK, ``messages`` at ``/anthropic``."""

    id = "anthropic.messages"
    FINISH: ClassVar[dict[str | None, str]] = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
    TOOL: ClassVar[Any] = {"name": sc.TOOL_NAME, "description": "Weather", "input_schema": WEATHER_SCHEMA}

    def _client(self, gateway_url: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=gateway_url + "/anthropic", api_key="client-key", max_retries=0)

    def chat(self, gateway_url: str, model: str) -> Answer:
        with self._client(gateway_url) as client:
            message = client.messages.create(
                model=model, max_tokens=256, messages=[{"role": "user", "content": QUESTION}]
            )
        text = "".join(block.text for block in message.content if block.type == "text")
        return Answer(
            text,
            self.FINISH.get(message.stop_reason, str(message.stop_reason)),
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
        )

    def stream(self, gateway_url: str, model: str) -> Answer:
        with (
            self._client(gateway_url) as client,
            client.messages.stream(
                model=model, max_tokens=256, messages=[{"role": "user", "content": QUESTION}]
            ) as stream,
        ):
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        return Answer(
            "".join(pieces), self.FINISH.get(final.stop_reason, str(final.stop_reason)), len(pieces)
        )

    def tool_call(self, gateway_url: str, model: str, *, stream: bool) -> ToolCall:
        messages: Any = [{"role": "user", "content": QUESTION}]
        with self._client(gateway_url) as client:
            if stream:
                with client.messages.stream(
                    model=model, max_tokens=256, messages=messages, tools=[self.TOOL]
                ) as events:
                    message = events.get_final_message()
            else:
                message = client.messages.create(
                    model=model, max_tokens=256, messages=messages, tools=[self.TOOL]
                )
        call = next(block for block in message.content if block.type == "tool_use")
        finish = self.FINISH.get(message.stop_reason, str(message.stop_reason))
        return ToolCall(call.name, dict(call.input), finish)  # type: ignore[arg-type]

    def error(self, gateway_url: str, model: str) -> Failure:
        with self._client(gateway_url) as client:
            try:
                client.messages.create(
                    model=model, max_tokens=16, messages=[{"role": "user", "content": QUESTION}]
                )
            except anthropic.APIStatusError as error:
                body = error.body if isinstance(error.body, dict) else {}
                detail = body.get("error") if isinstance(body.get("error"), dict) else {}
                assert body.get("type") == "error", body
                return Failure(error.status_code, str(detail.get("message", "")))
        raise AssertionError("the SDK did not raise")


class GeminiClient:
    """``google-genai`` SDK, ``models.generate_content`` at ``/genai`` (its default API version, v1)."""

    id = "gemini.generate_content"
    _finish: ClassVar[dict[str, str]] = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}

    def _client(self, gateway_url: str) -> genai.Client:
        return genai.Client(
            api_key="client-key", http_options=genai_types.HttpOptions(base_url=gateway_url + "/genai")
        )

    def _reason(self, response: genai_types.GenerateContentResponse, default: str = "") -> str:
        candidate = response.candidates[0] if response.candidates else None
        reason = candidate.finish_reason if candidate is not None else None
        if reason is None:
            return default
        # Gemini says STOP after a function call too; the core's word for it is tool_calls.
        return "tool_calls" if response.function_calls else self._finish.get(reason.value, reason.value)

    def chat(self, gateway_url: str, model: str) -> Answer:
        with self._client(gateway_url) as client:  # a client dropped mid-call closes its connection
            response = client.models.generate_content(model=model, contents=QUESTION)
        usage = response.usage_metadata
        return Answer(
            response.text or "",
            self._reason(response),
            input_tokens=usage.prompt_token_count if usage else None,
            output_tokens=usage.candidates_token_count if usage else None,
        )

    def stream(self, gateway_url: str, model: str) -> Answer:
        text, finish, pieces = "", "", 0
        with self._client(gateway_url) as client:
            for chunk in client.models.generate_content_stream(model=model, contents=QUESTION):
                if chunk.text:
                    text, pieces = text + chunk.text, pieces + 1
                finish = self._reason(chunk, finish)
        return Answer(text, finish, pieces)

    def tool_call(self, gateway_url: str, model: str, *, stream: bool) -> ToolCall:
        declaration = genai_types.FunctionDeclaration(
            name=sc.TOOL_NAME, description="Weather", parameters_json_schema=WEATHER_SCHEMA
        )
        config = genai_types.GenerateContentConfig(
            tools=[genai_types.Tool(function_declarations=[declaration])],
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
        )
        with self._client(gateway_url) as client:
            models = client.models
            if stream:
                responses = list(
                    models.generate_content_stream(model=model, contents=QUESTION, config=config)
                )
            else:
                responses = [models.generate_content(model=model, contents=QUESTION, config=config)]
        calls = [call for response in responses for call in response.function_calls or []]
        assert len(calls) == 1, f"expected one whole function call, got {calls}"
        finish = "tool_calls" if any(self._reason(response) == "tool_calls" for response in responses) else ""
        return ToolCall(calls[0].name or "", dict(calls[0].args or {}), finish)

    def error(self, gateway_url: str, model: str) -> Failure:
        with self._client(gateway_url) as client:
            try:
                client.models.generate_content(model=model, contents=QUESTION)
            except genai_errors.APIError as error:
                return Failure(error.code, error.message or "")
        raise AssertionError("the SDK did not raise")


class OpenAIResponsesClient:
    """``openai`` SDK, ``responses`` at ``/v1``: the stream through the SDK's own stream helper."""

    id = "openai.responses"
    tools = True

    def chat(self, gateway_url: str, model: str) -> Answer:
        with _sdk(gateway_url) as client:
            response = client.responses.create(model=model, input=QUESTION)
        usage = response.usage
        return Answer(
            response.output_text,
            _responses_finish(response),
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
        )

    def stream(self, gateway_url: str, model: str) -> Answer:
        with (
            _sdk(gateway_url) as client,
            client.responses.stream(model=model, input=QUESTION) as stream,
        ):
            pieces = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert final.output_text == "".join(pieces)
        return Answer("".join(pieces), _responses_finish(final), len(pieces))

    def tool_call(self, gateway_url: str, model: str, *, stream: bool) -> ToolCall:
        tools: Any = [
            {"type": "function", "name": sc.TOOL_NAME, "description": "Weather", "parameters": WEATHER_SCHEMA}
        ]
        with _sdk(gateway_url) as client:
            if stream:
                with client.responses.stream(model=model, input=QUESTION, tools=tools) as events:
                    arguments = "".join(
                        event.delta
                        for event in events
                        if event.type == "response.function_call_arguments.delta"
                    )
                    response = events.get_final_response()
            else:
                response = client.responses.create(model=model, input=QUESTION, tools=tools)
                arguments = ""
        call = next(item for item in response.output if item.type == "function_call")
        assert not stream or arguments == call.arguments
        return ToolCall(call.name, json.loads(call.arguments), _responses_finish(response))

    def error(self, gateway_url: str, model: str) -> Failure:
        with _sdk(gateway_url) as client:
            return _failure(lambda: client.responses.create(model=model, input=QUESTION))


def _responses_finish(response: Any) -> str:
    """A Response's status in core terms: function calls are ``tool_calls``, incomplete is why."""
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        return "length" if reason == "max_output_tokens" else str(reason)
    if any(item.type == "function_call" for item in response.output):
        return "tool_calls"
    return "stop" if response.status == "completed" else str(response.status)


class OpenAICompletionsClient:
    """``openai`` SDK, legacy ``completions`` at ``/v1``. The dialect has no tools."""

    id = "openai.completions"
    tools = False

    def chat(self, gateway_url: str, model: str) -> Answer:
        with _sdk(gateway_url) as client:
            completion = client.completions.create(model=model, prompt=QUESTION)
        usage = completion.usage
        return Answer(
            completion.choices[0].text,
            completion.choices[0].finish_reason,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
        )

    def stream(self, gateway_url: str, model: str) -> Answer:
        text, finish, pieces = "", "", 0
        with _sdk(gateway_url) as client:
            for chunk in client.completions.create(model=model, prompt=QUESTION, stream=True):
                if not chunk.choices:
                    continue
                if chunk.choices[0].text:
                    text, pieces = text + chunk.choices[0].text, pieces + 1
                finish = chunk.choices[0].finish_reason or finish
        return Answer(text, finish, pieces)

    def tool_call(self, gateway_url: str, model: str, *, stream: bool) -> ToolCall:
        raise NotImplementedError("legacy completions has no tools")

    def error(self, gateway_url: str, model: str) -> Failure:
        with _sdk(gateway_url) as client:
            return _failure(lambda: client.completions.create(model=model, prompt=QUESTION))


def _sdk(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key="client-key", max_retries=0)


def _failure(call: Callable[[], object]) -> Failure:
    """What an ``openai`` SDK call raised: its status and the error body's message."""
    try:
        call()
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        return Failure(error.status_code, str(body.get("message", "")))
    raise AssertionError("the SDK did not raise")


CLIENTS: list[DialectClient] = [
    OpenAIChatClient(),
    OpenAIResponsesClient(),
    OpenAICompletionsClient(),
    AnthropicClient(),
    GeminiClient(),
]
