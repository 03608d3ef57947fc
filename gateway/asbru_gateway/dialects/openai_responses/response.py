"""Core answers -> Responses ``Response`` objects (and the pieces the stream renderer shares).

A ``Response`` repeats the request's settings (instructions, tools, sampling, ``metadata``...) next
to its ``output`` items, as OpenAI's does: SDKs read them back (``response.metadata``), and
``metadata`` exists for exactly that. The output is a ``message`` item holding the text as one
``output_text`` part, then one ``function_call`` item per tool call. A ``length`` stop is status
``incomplete`` with ``incomplete_details.reason = "max_output_tokens"``, as OpenAI reports it.

In agent mode the tool steps the gateway ran come first, as ``mcp_call`` items (what OpenAI's own
remote MCP tool shows); the calls a limit left unexecuted follow the answer that asked for them, as
``function_call`` items (the client may run them) and ``mcp_call`` items with status ``incomplete``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from asbru_gateway.core.schema import ToolCall
from asbru_gateway.core.usage import Usage
from asbru_gateway.errors import UpstreamProtocolError

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """``resp_...``, ``msg_...``, ``fc_...``: random, like OpenAI's (nothing is stored under them)."""
    return prefix + os.urandom(24).hex()


def skeleton(request: dict[str, Any], *, response_id: str, model: str) -> dict[str, Any]:
    """A ``Response`` in progress, with the request's settings echoed back."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": request.get("temperature"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def finish(response: dict[str, Any], finish_reason: str | None) -> None:
    """Set the final status from the core finish reason."""
    reason = _INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None


def usage_json(usage: Usage, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.total_tokens,
    }


def usage_from_core(usage: object) -> dict[str, Any] | None:
    """A core ``usage`` object in Responses terms (cached and reasoning token details kept)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or {}
    output_details = usage.get("completion_tokens_details") or {}
    return usage_json(
        Usage(_count(usage, "prompt_tokens"), _count(usage, "completion_tokens")),
        cached=_count(details, "cached_tokens"),
        reasoning=_count(output_details, "reasoning_tokens"),
    )


def _count(data: object, field: str) -> int:
    value = data.get(field) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [] if status == "in_progress" else [text_part(text)],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def mcp_call_item(item_id: str, step: dict[str, Any], *, started: bool = False) -> dict[str, Any]:
    """An agent-mode tool step (``core.chunks.STEP_KEY``) as an ``mcp_call`` item: as it ended, or,
    ``started``, as OpenAI's ``output_item.added`` has it (no arguments yet: their events follow)."""
    error = None if started else step.get("error")
    return {
        "id": item_id,
        "type": "mcp_call",
        "server_label": str(step.get("server_label") or ""),
        "name": str(step.get("name") or ""),
        "arguments": "" if started else str(step.get("arguments") or ""),
        "status": "in_progress" if started else step.get("status"),
        "output": None if started else step.get("output"),
        "error": None if error is None else _tool_error(error),
        "approval_request_id": None,
    }


def _tool_error(error: object) -> dict[str, Any]:
    """A step's error text as ``McpToolCallError``: the tool's result, or the gateway's reason it has none."""
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": str(error)}]}


def from_completion(
    completion: dict[str, Any], request: dict[str, Any], steps: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A complete core answer (``chat.completion``) as a ``Response``, after the agent's ``steps``."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        raise UpstreamProtocolError("upstream answer has no choices[0].message")
    model = completion.get("model")
    response = skeleton(request, response_id=new_id("resp_"), model=str(model or request.get("model")))
    output: list[dict[str, Any]] = response["output"]
    ran = [step for step in steps or () if step.get("status") != "incomplete"]
    left = [step for step in steps or () if step.get("status") == "incomplete"]
    output.extend(mcp_call_item(new_id("mcp_"), step) for step in ran)
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(new_id("msg_"), content))
    for call in message.get("tool_calls") or ():
        output.append(_function_call(call))
    output.extend(mcp_call_item(new_id("mcp_"), step) for step in left)
    finish(response, choice.get("finish_reason"))
    response["usage"] = usage_from_core(completion.get("usage"))
    return response


def _function_call(call: ToolCall) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise UpstreamProtocolError("upstream tool call has no function")
    return function_call_item(
        new_id("fc_"),
        str(call.get("id") or new_id("call_")),
        str(function.get("name") or ""),
        str(function.get("arguments") or ""),
    )
