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
from typing import Any, Protocol

import openai

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


CLIENTS: list[DialectClient] = [OpenAIChatClient(), OpenAIResponsesClient(), OpenAICompletionsClient()]
