"""The Gemini dialect as a pure translator: bytes in, typed request out; core answers in, Gemini bytes out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asbru_gateway.core.formats import CORE, GEMINI_COUNT_TOKENS, GEMINI_EMBED, GEMINI_GENERATE
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import CHAT, COUNT_TOKENS, EMBEDDINGS, LLMRequest
from asbru_gateway.core.usage import Usage
from asbru_gateway.dialects.base import Incoming
from asbru_gateway.dialects.gemini import GeminiDialect
from asbru_gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedError,
    UpstreamError,
)

DIALECT = GeminiDialect()
ENDPOINTS = {endpoint.path.rpartition(":")[2]: endpoint for endpoint in DIALECT.endpoints}
HELLO = {"role": "user", "parts": [{"text": "hello"}]}


def parse(
    body: Any,
    *,
    method: str = "generateContent",
    model: str = "openai/gpt-4o",
    query: bytes = b"",
    headers: tuple[tuple[bytes, bytes], ...] = ((b"x-goog-api-key", b"client-key"),),
) -> LLMRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    if method == "streamGenerateContent" and not query:
        query = b"alt=sse"
    return DIALECT.parse(
        Incoming(
            request_id="req-1",
            endpoint=ENDPOINTS[method],
            body=raw,
            headers=list(headers),
            query=query,
            path_model=model,
            family="gemini",
        )
    )


def core_of(body: Any, **kwargs: Any) -> dict[str, Any]:
    return parse(body, **kwargs).core


def rejected(body: Any, **kwargs: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as raised:
        core_of(body, **kwargs)
    return raised.value


def test_endpoints_have_the_model_in_the_path() -> None:
    assert DIALECT.id == "gemini.generate_content"
    assert DIALECT.family == "gemini"
    paths = {(endpoint.method, endpoint.path) for endpoint in DIALECT.endpoints}
    assert ("POST", "/models/{model}:streamGenerateContent") in paths
    assert ("GET", "/models") in paths
    assert ENDPOINTS["streamGenerateContent"].stream is True


# --- parse: what every request carries -------------------------------------------------------------


def test_parse_keeps_the_body_for_pass_through_and_pops_fallbacks() -> None:
    body = {"contents": [HELLO], "fallbacks": ["openai/gpt-4o-mini"], "futureField": {"x": 1}}
    request = parse(body)
    assert request.operation == CHAT
    assert request.model == "openai/gpt-4o"
    assert request.family == "gemini"
    assert request.stream is False
    assert request.native == {"contents": [HELLO], "futureField": {"x": 1}}
    assert request.native_format == GEMINI_GENERATE
    assert request.fallbacks == ["openai/gpt-4o-mini"]
    credential = request.credential
    assert credential is not None and credential.source == "x-goog-api-key"


def test_key_in_query_is_a_credential_too() -> None:
    request = parse({"contents": [HELLO]}, query=b"key=abc123", headers=())
    assert request.credential is not None and request.credential.source == "query"


def test_stream_needs_alt_sse() -> None:
    assert parse({"contents": [HELLO]}, method="streamGenerateContent").stream is True
    with pytest.raises(InvalidRequestError) as raised:
        parse({"contents": [HELLO]}, method="streamGenerateContent", query=b"key=x")
    assert raised.value.param == "alt"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"", None),
        (b"[1]", None),
        (b"{not json", None),
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": "hi"}, "contents"),
        ({"contents": ["hi"]}, "contents[0]"),
        ({"contents": [{"role": {"x": 1}, "parts": []}]}, "contents[0].role"),
        ({"contents": [{"role": ["user"], "parts": []}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": "hi"}]}, "contents[0].parts"),
        ({"contents": [HELLO], "fallbacks": "x"}, "fallbacks"),
    ],
)
def test_malformed_bodies_are_400_at_parse(body: Any, param: str | None) -> None:
    """Checked before routing, so a malformed body is a 400 even when it would pass through."""
    with pytest.raises(InvalidRequestError) as raised:
        parse(body)
    assert raised.value.status == 400
    assert raised.value.param == param


def test_missing_path_model_is_400() -> None:
    with pytest.raises(InvalidRequestError):
        parse({"contents": [HELLO]}, model="")


# --- to_core: contents ----------------------------------------------------------------------------


def test_system_roles_and_text() -> None:
    core = core_of(
        {
            "systemInstruction": {"role": "user", "parts": [{"text": "be brief"}]},
            "contents": [
                {"parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "hel"}, {"text": "lo"}]},
                {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
            ],
        },
        method="streamGenerateContent",
    )
    assert core["model"] == "openai/gpt-4o"
    assert core["stream"] is True and core["stream_options"] == {"include_usage": True}
    assert core["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]


def test_snake_case_fields_are_read_like_camel_case() -> None:
    """google-genai sends ``inlineData: {"mime_type": ...}``; Google accepts both spellings."""
    core = core_of(
        {
            "contents": [
                {"role": "user", "parts": [{"inline_data": {"data": "iVBORw==", "mime_type": "image/png"}}]}
            ],
            "generation_config": {"max_output_tokens": 5, "thinking_config": {"thinking_budget": 64}},
        }
    )
    assert core["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}
    ]
    assert core["max_tokens"] == 5
    assert core["thinking"] == {"budget_tokens": 64}


def test_media_parts() -> None:
    parts = [
        {"text": "look"},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]
    content = core_of({"contents": [{"role": "user", "parts": parts}]})["messages"][0]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert content[2] == {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    assert content[3]["type"] == "file"
    assert content[3]["file"]["file_data"] == "data:application/pdf;base64,JVBERi0="


def test_function_calls_and_responses_pair_up() -> None:
    """Calls without ids get one; each result answers the earliest unanswered call of its name."""
    core = core_of(
        {
            "contents": [
                HELLO,
                {
                    "role": "model",
                    "parts": [
                        {"text": "checking"},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "c2ln",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                        {"functionCall": {"id": "given", "name": "get_time", "args": {}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "get_weather", "response": {"temp": 20}}},
                        {"functionResponse": {"id": "given", "name": "get_time", "response": {"t": "noon"}}},
                        {"functionResponse": {"name": "get_weather", "response": {"temp": 5}}},
                        {"text": "and?"},
                    ],
                },
            ]
        }
    )
    assistant, *tools, last = core["messages"][1:]
    assert assistant["content"] == "checking"
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_0", "call_1", "given"]
    assert orjson.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"city": "Oslo"}
    assert [(tool["tool_call_id"], orjson.loads(tool["content"])) for tool in tools] == [
        ("call_0", {"temp": 20}),
        ("given", {"t": "noon"}),
        ("call_1", {"temp": 5}),
    ]
    assert last == {"role": "user", "content": "and?"}


def test_thought_parts_are_left_out() -> None:
    core = core_of(
        {
            "contents": [
                HELLO,
                {"role": "model", "parts": [{"text": "hmm", "thought": True}, {"text": "hi"}]},
                {"role": "model", "parts": [{"text": "only thinking", "thought": True}]},
                {"role": "user", "parts": [{"text": "ok"}]},
            ]
        }
    )
    assert [message["role"] for message in core["messages"]] == ["user", "assistant", "user"]
    assert core["messages"][1]["content"] == "hi"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
        ({"contents": [{"parts": ["text"]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"thought": "yes", "text": "x"}]}]}, "contents[0].parts[0].thought"),
        (
            {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "contents[0].parts[0].functionResponse.name",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": "{}"}}]}]},
            "contents[0].parts[0].functionCall.args",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": 5, "data": "x"}}]}]},
            "contents[0].parts[0].inlineData.mimeType",
        ),
        ({"contents": [{"parts": []}]}, "contents"),
        ({"contents": [HELLO], "systemInstruction": 7}, "systemInstruction"),
        ({"contents": [HELLO], "generationConfig": {"temperature": "hot"}}, "generationConfig.temperature"),
        ({"contents": [HELLO], "generationConfig": {"topK": 1.5}}, "generationConfig.topK"),
        ({"contents": [HELLO], "generationConfig": {"stopSequences": "x"}}, "generationConfig.stopSequences"),
        ({"contents": [HELLO], "tools": {"functionDeclarations": []}}, "tools"),
        (
            {"contents": [HELLO], "tools": [{"functionDeclarations": [{"name": 3}]}]},
            "tools[0].functionDeclarations[0].name",
        ),
    ],
)
def test_wrong_types_are_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    error = rejected(body)
    assert error.status == 400
    assert error.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"contents": [HELLO], "safetySettings": [{"category": "X", "threshold": "BLOCK_NONE"}]},
            "safetySettings",
        ),
        ({"contents": [HELLO], "cachedContent": "cachedContents/1"}, "cachedContent"),
        ({"contents": [HELLO], "tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
        ({"contents": [HELLO], "tools": [{"code_execution": {}}]}, "tools[0].codeExecution"),
        ({"contents": [HELLO], "labels": {"a": "b"}}, "labels"),
        (
            {"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]},
            "contents[0].parts[0].executableCode",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "video/mp4", "data": "AA=="}}]}]},
            "contents[0].parts[0].inlineData.mimeType",
        ),
        (
            {"contents": [HELLO], "generationConfig": {"responseLogprobs": True}},
            "generationConfig.responseLogprobs",
        ),
        (
            {"contents": [HELLO], "generationConfig": {"responseModalities": ["IMAGE"]}},
            "generationConfig.responseModalities",
        ),
        (
            {"contents": [HELLO], "generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
            "generationConfig.thinkingConfig.includeThoughts",
        ),
        (
            {"contents": [HELLO], "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}}},
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
        (
            {"contents": [HELLO], "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}},
            "toolConfig.functionCallingConfig.mode",
        ),
    ],
)
def test_what_the_core_cannot_express_is_400_never_dropped(body: dict[str, Any], param: str) -> None:
    """Only when translating: the same body passes through to a Gemini provider untouched."""
    request = parse(body)
    assert request.native is not None
    with pytest.raises(UnsupportedError) as raised:
        _ = request.core
    assert raised.value.param == param
    assert "Gemini provider" in raised.value.message


def test_empty_safety_settings_say_nothing() -> None:
    assert core_of({"contents": [HELLO], "safetySettings": []})["messages"]


# --- to_core: options -----------------------------------------------------------------------------


def test_generation_config() -> None:
    core = core_of(
        {
            "contents": [HELLO],
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.9,
                "topK": "40",
                "maxOutputTokens": 100,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "seed": 7,
                "presencePenalty": 0.5,
                "frequencyPenalty": -0.5,
                "responseModalities": ["TEXT"],
                "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": False},
            },
        }
    )
    expected = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 100,
        "stop": ["END"],
        "n": 2,
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
    }
    assert {name: core[name] for name in expected} == expected
    assert "thinking" not in core


def test_json_output() -> None:
    json_mode = core_of({"contents": [HELLO], "generationConfig": {"responseMimeType": "application/json"}})
    assert json_mode["response_format"] == {"type": "json_object"}
    schema = {
        "type": "OBJECT",
        "properties": {
            "n": {"type": "INTEGER", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "1"},
        },
        "propertyOrdering": ["n", "tags"],
    }
    core = core_of(
        {
            "contents": [HELLO],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
        }
    )
    assert core["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {
                "type": "object",
                "properties": {
                    "n": {"type": ["integer", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
            },
        },
    }
    raw = {"type": "object", "additionalProperties": False}
    direct = core_of({"contents": [HELLO], "generationConfig": {"responseJsonSchema": raw}})
    assert direct["response_format"]["json_schema"]["schema"] == raw


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                },
                {
                    "name": "get_time",
                    "parameters_json_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
                    "response_json_schema": {"type": "string"},
                },
                {"name": "ping"},
            ]
        }
    ]
    core = core_of(
        {"contents": [HELLO], "tools": tools, "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}
    )
    assert core["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "ping"}},
    ]
    assert core["tool_choice"] == "auto"

    def choice(config: dict[str, Any]) -> dict[str, Any]:
        return core_of({"contents": [HELLO], "tools": tools, "toolConfig": {"functionCallingConfig": config}})

    assert choice({"mode": "NONE"})["tool_choice"] == "none"
    assert choice({"mode": "ANY"})["tool_choice"] == "required"
    one = choice({"mode": "ANY", "allowedFunctionNames": ["ping"]})
    assert one["tool_choice"] == {"type": "function", "function": {"name": "ping"}}
    two = choice({"mode": "ANY", "allowedFunctionNames": ["ping", "get_time"]})
    assert two["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in two["tools"]] == ["get_time", "ping"]
    with pytest.raises(InvalidRequestError):
        _ = choice({"mode": "AUTO", "allowedFunctionNames": ["ping"]})


# --- count tokens and embeddings -------------------------------------------------------------------


def test_count_tokens() -> None:
    request = parse({"contents": [HELLO]}, method="countTokens")
    assert request.operation == COUNT_TOKENS
    assert request.native_format == GEMINI_COUNT_TOKENS
    assert request.core["messages"] == [{"role": "user", "content": "hello"}]
    wrapped = parse(
        {
            "generateContentRequest": {
                "model": "models/x",
                "contents": [HELLO],
                "systemInstruction": {"parts": [{"text": "s"}]},
            }
        },
        method="countTokens",
    )
    assert [message["role"] for message in wrapped.core["messages"]] == ["system", "user"]
    with pytest.raises(InvalidRequestError):
        parse({"generateContentRequest": "x"}, method="countTokens")


def test_embed_content_and_batch() -> None:
    single = parse(
        {"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "outputDimensionality": 3},
        method="embedContent",
    )
    assert single.operation == EMBEDDINGS
    assert single.native_format == GEMINI_EMBED
    assert single.core == {"model": "openai/gpt-4o", "input": "a\nb", "dimensions": 3}
    batch = parse(
        {
            "requests": [
                {"model": "models/x", "content": {"parts": [{"text": "a"}]}},
                {"content": {"parts": [{"text": "b"}]}},
            ]
        },
        method="batchEmbedContents",
    )
    assert batch.core == {"model": "openai/gpt-4o", "input": ["a", "b"]}


@pytest.mark.parametrize(
    ("method", "body", "param"),
    [
        ("embedContent", {"content": "a"}, "content"),
        ("batchEmbedContents", {"requests": []}, "requests"),
        ("batchEmbedContents", {"requests": [{"content": "x"}]}, "requests[0]"),
    ],
)
def test_bad_embed_bodies_are_400_at_parse(method: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse(body, method=method)
    assert raised.value.param == param


def test_embed_task_type_cannot_be_translated() -> None:
    request = parse(
        {"content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_QUERY"}, method="embedContent"
    )
    with pytest.raises(UnsupportedError) as raised:
        _ = request.core
    assert raised.value.param == "taskType"


# --- render -----------------------------------------------------------------------------------------

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 8,
        "total_tokens": 18,
        "completion_tokens_details": {"reasoning_tokens": 3},
        "prompt_tokens_details": {"cached_tokens": 4},
    },
}


def render(reply: Reply, operation_body: Any = None, method: str = "generateContent") -> dict[str, Any]:
    request = parse(operation_body or {"contents": [HELLO]}, method=method)
    result: dict[str, Any] = orjson.loads(DIALECT.render(request, reply))
    return result


def test_render_core_completion() -> None:
    assert render(Reply(data=COMPLETION)) == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me check."},
                        {"functionCall": {"id": "call_9", "name": "get_weather", "args": {"city": "Paris"}}},
                    ],
                },
                "index": 0,
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "totalTokenCount": 18,
            "thoughtsTokenCount": 3,
            "cachedContentTokenCount": 4,
        },
        "modelVersion": "gpt-4o",
        "responseId": "chatcmpl-1",
    }


@pytest.mark.parametrize(
    ("reason", "gemini"),
    [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("odd", "OTHER")],
)
def test_finish_reasons(reason: str, gemini: str) -> None:
    completion = {"choices": [{"message": {"content": "x"}, "finish_reason": reason}]}
    assert render(Reply(data=completion))["candidates"][0]["finishReason"] == gemini


def test_arguments_that_are_not_an_object_are_kept() -> None:
    completion = {"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "[1"}}]}}]}
    call = render(Reply(data=completion))["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "f", "args": {"arguments": "[1"}}


def test_native_replies_pass_through_unchanged() -> None:
    body = b'{"candidates":[],"somethingNew":1}'
    request = parse({"contents": [HELLO]})
    assert DIALECT.render(request, Reply(body, format=GEMINI_GENERATE)) is body
    with pytest.raises(GatewayError):
        DIALECT.render(request, Reply(body, format="anthropic.messages"))


def test_render_embeddings_and_counts() -> None:
    answer = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}
    single = render(Reply(data=answer), {"content": {"parts": [{"text": "a"}]}}, "embedContent")
    assert single == {"embedding": {"values": [1.0]}}
    batch_body = {
        "requests": [{"content": {"parts": [{"text": "a"}]}}, {"content": {"parts": [{"text": "b"}]}}]
    }
    batch = render(Reply(data=answer), batch_body, "batchEmbedContents")
    assert batch == {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}
    counted = render(Reply(data={"input_tokens": 12}, format=CORE), {"contents": [HELLO]}, "countTokens")
    assert counted == {"totalTokens": 12}


def test_models_list() -> None:
    listed = orjson.loads(DIALECT.models([("chat", "asbru-route"), ("openai/gpt-4o", "openai")]))
    assert [model["name"] for model in listed["models"]] == ["models/chat", "models/openai/gpt-4o"]
    assert "generateContent" in listed["models"][0]["supportedGenerationMethods"]


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "name"),
    [
        (InvalidRequestError("bad", param="contents"), 400, "INVALID_ARGUMENT"),
        (ModelNotFoundError("no such model"), 404, "NOT_FOUND"),
        (UpstreamError("slow down", status=429, code="RESOURCE_EXHAUSTED"), 429, "RESOURCE_EXHAUSTED"),
        (UpstreamError("limit", status=429, type="rate_limit_error"), 429, "RESOURCE_EXHAUSTED"),
        (UpstreamError("nope", status=401), 401, "UNAUTHENTICATED"),
        (UpstreamError("down", status=503), 503, "UNAVAILABLE"),
        (UpstreamError("slow", status=504), 504, "DEADLINE_EXCEEDED"),
        (UpstreamError("teapot", status=418), 418, "INVALID_ARGUMENT"),
        (GatewayError("boom"), 500, "INTERNAL"),
    ],
)
def test_errors_in_google_shape(error: GatewayError, status: int, name: str) -> None:
    code, body = DIALECT.error(error)
    data = orjson.loads(body)["error"]
    assert code == status == data["code"]
    assert data["status"] == name
    assert data["message"] == error.message


def test_error_details_name_the_field() -> None:
    _, body = DIALECT.error(InvalidRequestError("must be a string", param="contents[0].role"))
    details = orjson.loads(body)["error"]["details"]
    assert details == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "contents[0].role", "description": "must be a string"}],
        }
    ]


# --- stream renderer --------------------------------------------------------------------------------


def events(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n\n") or not data
    return [orjson.loads(event.removeprefix(b"data: ")) for event in data.split(b"\n\n") if event]


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [choice],
        **extra,
    }


def renderer() -> Any:
    return DIALECT.stream(parse({"contents": [HELLO]}, method="streamGenerateContent"))


def test_stream_text_then_finish_with_usage_on_the_last_event() -> None:
    stream = renderer()
    first = events(stream.items([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"})]))
    assert first == [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
            "modelVersion": "gpt-4o",
            "responseId": "chatcmpl-7",
        }
    ]
    assert events(stream.items([chunk({"content": "lo"}), chunk({}, "stop")]))[0]["candidates"][0]["content"][
        "parts"
    ] == [{"text": "lo"}]
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    last = events(stream.items([{**chunk({}), "choices": [], "usage": usage}]))
    assert last[0]["candidates"][0]["finishReason"] == "STOP"
    assert last[0]["usageMetadata"] == {
        "promptTokenCount": 3,
        "candidatesTokenCount": 2,
        "totalTokenCount": 5,
    }
    assert stream.end(Usage(3, 2)) == b""


def test_stream_end_brings_usage_when_no_chunk_had_it() -> None:
    stream = renderer()
    assert stream.items([chunk({}, "length")]) == b""
    (last,) = events(stream.end(Usage(4, 1)))
    assert last["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert last["usageMetadata"]["totalTokenCount"] == 5


def test_stream_tool_calls_arrive_whole() -> None:
    stream = renderer()
    calls = [
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}
                ]
            }
        ),
    ]
    (first,) = events(stream.items(calls))
    assert first["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "call_a", "name": "get_weather", "args": {"city": "Paris"}}}
    ]
    (last,) = events(stream.items([chunk({}, "tool_calls")]) + stream.end(None))
    assert last["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "call_b", "name": "get_time", "args": {}}}
    ]
    assert last["candidates"][0]["finishReason"] == "STOP"


def test_stream_core_sse_bytes_are_translated() -> None:
    """OpenAI-family providers hand over core SSE bytes; they are read, not forwarded."""
    stream = renderer()
    raw = b"data: " + orjson.dumps(chunk({"content": "hi"})) + b"\n\ndata: [DONE]\n\n"
    (event,) = events(stream.items([raw]))
    assert event["candidates"][0]["content"]["parts"] == [{"text": "hi"}]


def test_stream_native_gemini_events_are_forwarded_as_they_are() -> None:
    stream = renderer()
    native = b'data: {"candidates":[{"content":{"parts":[{"text":"hi"}]}}],"newField":1}\n\n'
    assert stream.items([native]) == native
    assert stream.items([native, native]) == native + native
    assert stream.end(Usage(1, 1)) == b""


def test_stream_error_event_has_the_request_id() -> None:
    stream = renderer()
    (event,) = events(stream.error(UpstreamError("overloaded", status=503)))
    error = event["error"]
    assert (error["code"], error["status"], error["message"]) == (503, "UNAVAILABLE", "overloaded")
    assert {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": "req-1"} in error["details"]
