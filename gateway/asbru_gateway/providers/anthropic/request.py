"""OpenAI ``chat.completions`` request body -> Anthropic Messages request body.

The two formats differ in ways that need real translation, not renaming:

- the system prompt is a top-level ``system`` field, not a message;
- roles must alternate user/assistant, so consecutive same-role messages are merged, and OpenAI's
  ``tool`` messages become ``tool_result`` blocks inside a user message;
- ``max_tokens`` is required (OpenAI makes it optional), so a default is filled in;
- images are content blocks with a ``base64`` or ``url`` source, not data URLs.

Input that Anthropic cannot take raises ``InvalidRequestError`` (``UnsupportedError`` for features
it lacks) naming the offending field in ``param``: the client gets a precise 400 from the gateway
instead of an opaque one from upstream. Nothing here mutates the client's request: a fallback to
another provider reuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from asbru_gateway.errors import InvalidRequestError, UnsupportedError

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; OpenAI clients often omit it."""

Block = dict[str, Any]
Message = dict[str, Any]

_TOOL_CHOICES: dict[str, Block] = {
    "auto": {"type": "auto"},
    "none": {"type": "none"},
    "required": {"type": "any"},
}


def build_body(request: Mapping[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    """The Anthropic ``POST /messages`` body for an OpenAI request, sent to ``model``."""
    _reject_unsupported(request)
    system, messages = _messages(request.get("messages"))
    body: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(request), "messages": messages}
    if system:
        body["system"] = system
    _copy_sampling(request, body)
    _copy_extensions(request, body)
    _copy_tools(request, body)
    user = request.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise InvalidRequestError("'user' must be a string", param="user")
        body["metadata"] = {"user_id": user}
    if stream:
        body["stream"] = True
    return body


def _reject_unsupported(request: Mapping[str, Any]) -> None:
    """Fail loudly on options whose silent loss would change what the client gets back."""
    n = request.get("n")
    if n not in (None, 1):
        raise UnsupportedError("Anthropic returns one choice per request: 'n' must be 1", param="n")
    if request.get("logprobs"):
        raise UnsupportedError("Anthropic does not return log probabilities", param="logprobs")
    response_format = request.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise UnsupportedError(
            f"response_format type {response_format.get('type')!r} is not supported by Anthropic",
            param="response_format",
        )


# --- messages -----------------------------------------------------------------------------------


def _messages(raw: object) -> tuple[str | None, list[Message]]:
    """Hoist system/developer text to ``system``; convert and merge the rest into alternating turns."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("'messages' must be a non-empty list", param="messages")
    system: list[str] = []
    turns: list[Message] = []
    for i, message in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"{param} must be an object", param=param)
        role = message.get("role")
        if role in ("system", "developer"):
            text = _system_text(message.get("content"), param)
            if text:
                system.append(text)
            continue
        role_out, blocks = _turn(role, message, param)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role_out:
            turns[-1]["content"].extend(blocks)  # Anthropic requires user/assistant alternation
        else:
            turns.append({"role": role_out, "content": blocks})
    if not turns:
        raise InvalidRequestError("'messages' needs at least one user or assistant message", param="messages")
    return "\n\n".join(system) or None, turns


def _turn(role: object, message: Mapping[str, Any], param: str) -> tuple[str, list[Block]]:
    """One non-system message as (Anthropic role, blocks); OpenAI ``tool`` messages go to the user."""
    if not isinstance(role, str) or role not in _CONVERTERS:
        raise UnsupportedError(f"{param}.role {role!r} is not supported by Anthropic", param=f"{param}.role")
    role_out, convert = _CONVERTERS[role]
    return role_out, convert(message, param)


def _system_text(content: object, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequestError(f"{param}.content must be a string or a list", param=f"{param}.content")
    texts: list[str] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidRequestError(
                f"{param}.content[{j}]: system messages may only contain text parts",
                param=f"{param}.content[{j}]",
            )
        texts.append(_text_of(part, f"{param}.content[{j}]"))
    return "\n\n".join(text for text in texts if text)


def _user_blocks(message: Mapping[str, Any], param: str) -> list[Block]:
    return _content_blocks(message.get("content"), f"{param}.content", images=True)


def _assistant_blocks(message: Mapping[str, Any], param: str) -> list[Block]:
    if message.get("function_call") is not None:
        raise UnsupportedError(
            f"{param}.function_call is deprecated: use tool_calls", param=f"{param}.function_call"
        )
    blocks = _content_blocks(message.get("content"), f"{param}.content", images=False)
    tool_calls = message.get("tool_calls")
    if tool_calls is None:
        return blocks
    if not isinstance(tool_calls, list):
        raise InvalidRequestError(f"{param}.tool_calls must be a list", param=f"{param}.tool_calls")
    blocks.extend(_tool_use_block(call, f"{param}.tool_calls[{k}]") for k, call in enumerate(tool_calls))
    return blocks


def _tool_result_blocks(message: Mapping[str, Any], param: str) -> list[Block]:
    """An OpenAI ``tool`` message: one ``tool_result`` block (merged into the next user turn)."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(f"{param}.tool_call_id is required", param=f"{param}.tool_call_id")
    block: Block = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _content_blocks(content, f"{param}.content", images=True)
        if parts:
            block["content"] = parts
    return [block]


_CONVERTERS: dict[str, tuple[str, Callable[[Mapping[str, Any], str], list[Block]]]] = {
    "user": ("user", _user_blocks),
    "assistant": ("assistant", _assistant_blocks),
    "tool": ("user", _tool_result_blocks),
}


def _content_blocks(content: object, param: str, *, images: bool) -> list[Block]:
    """OpenAI ``content`` (string or parts) as blocks; empty text is dropped (Anthropic rejects it)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(f"{param} must be a string, a list or null", param=param)
    blocks: list[Block] = []
    for j, part in enumerate(content):
        block = _part_block(part, f"{param}[{j}]", images=images)
        if block is not None:
            blocks.append(block)
    return blocks


def _part_block(part: object, param: str, *, images: bool) -> Block | None:
    if not isinstance(part, dict):
        raise InvalidRequestError(f"{param} must be an object", param=param)
    kind = part.get("type")
    if kind == "text":
        text = _text_of(part, param)
        return {"type": "text", "text": text} if text else None
    if kind == "refusal" and not images:  # an assistant's earlier refusal, replayed as plain text
        refusal = part.get("refusal")
        return {"type": "text", "text": refusal} if isinstance(refusal, str) and refusal else None
    if kind == "image_url" and images:
        return _image_block(part, param)
    raise UnsupportedError(
        f"{param}: content part type {kind!r} is not supported here", param=f"{param}.type"
    )


def _text_of(part: Mapping[str, Any], param: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError(f"{param}.text must be a string", param=f"{param}.text")
    return text


def _image_block(part: Mapping[str, Any], param: str) -> Block:
    """``image_url`` part -> image block: data URLs become base64 sources, http(s) URLs url sources."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{param}.image_url.url is required", param=f"{param}.image_url")
    if url.startswith("data:"):
        return {"type": "image", "source": _base64_source(url, f"{param}.image_url")}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError(
        f"{param}.image_url.url must be an http(s) or data: URL", param=f"{param}.image_url"
    )


def _base64_source(url: str, param: str) -> Block:
    header, comma, data = url[len("data:") :].partition(",")
    media_type, *options = header.split(";")
    if not comma or not data or "base64" not in options or not media_type.startswith("image/"):
        raise InvalidRequestError(
            f"{param}: a data URL must look like data:image/<type>;base64,<data>", param=param
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _tool_use_block(call: object, param: str) -> Block:
    """An assistant's earlier tool call -> ``tool_use`` block; its JSON-string arguments become ``input``."""
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise UnsupportedError(f"{param}: only function tool calls are supported", param=param)
    function = call.get("function")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(f"{param}.id is required", param=f"{param}.id")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"{param}.function.name is required", param=f"{param}.function")
    arguments = function.get("arguments") or "{}"
    return {
        "type": "tool_use",
        "id": call_id,
        "name": function["name"],
        "input": _arguments(arguments, param),
    }


def _arguments(arguments: object, param: str) -> Block:
    if isinstance(arguments, dict):
        return arguments
    param = f"{param}.function.arguments"
    if not isinstance(arguments, str):
        raise InvalidRequestError(f"{param} must be a JSON string", param=param)
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(f"{param} is not valid JSON", param=param) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError(f"{param} must encode a JSON object", param=param)
    return parsed


# --- options ------------------------------------------------------------------------------------


def _max_tokens(request: Mapping[str, Any]) -> int:
    for field in ("max_completion_tokens", "max_tokens"):  # the newer OpenAI name wins
        value = request.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(f"'{field}' must be a positive integer", param=field)
        return value
    return DEFAULT_MAX_TOKENS


def _copy_sampling(request: Mapping[str, Any], body: dict[str, Any]) -> None:
    for field in ("temperature", "top_p"):
        value = request.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(f"'{field}' must be a number", param=field)
        body[field] = value
    stop = request.get("stop")
    if isinstance(stop, str):
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        if stop:
            body["stop_sequences"] = list(stop)
    elif stop is not None:
        raise InvalidRequestError("'stop' must be a string or a list of strings", param="stop")


def _copy_extensions(request: Mapping[str, Any], body: dict[str, Any]) -> None:
    """The core's two extensions, both native to Anthropic: ``top_k`` and a ``thinking`` budget."""
    top_k = request.get("top_k")  # core extensions: Anthropic has both
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise InvalidRequestError("'top_k' must be a non-negative integer", param="top_k")
        body["top_k"] = top_k
    thinking = request.get("thinking")
    if thinking is not None:
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise InvalidRequestError("'thinking.budget_tokens' must be a positive integer", param="thinking")
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _copy_tools(request: Mapping[str, Any], body: dict[str, Any]) -> None:
    tools = request.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequestError("'tools' must be a list", param="tools")
        if tools:
            body["tools"] = [anthropic_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(request, has_tools="tools" in body)
    if choice is not None:
        body["tool_choice"] = choice


def anthropic_tool(tool: object, param: str) -> Block:
    """A core function tool as an Anthropic tool (also for tools plugins add to a passed-through body)."""
    if not isinstance(tool, dict):
        raise InvalidRequestError(f"{param} must be an object", param=param)
    if tool.get("type") != "function":
        raise UnsupportedError(
            f"{param}.type {tool.get('type')!r}: only function tools are supported", param=f"{param}.type"
        )
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"{param}.function.name is required", param=f"{param}.function")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"{param}.function.parameters must be a JSON schema object", param=f"{param}.function.parameters"
        )
    out: Block = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(request: Mapping[str, Any], *, has_tools: bool) -> Block | None:
    """OpenAI auto/none/required/named -> Anthropic auto/none/any/tool; ``parallel_tool_calls`` too."""
    choice = _mapped_choice(request.get("tool_choice"))
    if not has_tools:
        if choice is not None and choice["type"] in ("any", "tool"):
            raise InvalidRequestError("'tool_choice' requires 'tools'", param="tool_choice")
        return None
    if request.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
        choice = {**(choice or _TOOL_CHOICES["auto"]), "disable_parallel_tool_use": True}
    return choice


def _mapped_choice(choice: object) -> Block | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return dict(_TOOL_CHOICES[choice])
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {"type": "tool", "name": function["name"]}
    raise InvalidRequestError(
        "'tool_choice' must be auto, none, required or {'type': 'function', 'function': {'name': ...}}",
        param="tool_choice",
    )
