"""The fake OpenAI's Responses (``/v1/responses``) and legacy Completions (``/v1/completions``) answers.

Documented wire formats, same scenarios as ``scenarios.py`` (text, ``tool``, ``error-<status>``
handled by the caller), plus ``fail-midstream``: a Responses stream that sends one text delta, then
``response.failed`` (or, for completions, an ``{"error": ...}`` chunk).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import scenarios as sc

RESPONSE_ID = "resp_fake_0001"
MESSAGE_ID = "msg_fake_0001"
FUNCTION_CALL_ID = "fc_fake_0001"


def _usage() -> dict[str, Any]:
    return {
        "input_tokens": sc.PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": sc.COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": sc.PROMPT_TOKENS + sc.COMPLETION_TOKENS,
    }


def _message(text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def _function_call(arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": FUNCTION_CALL_ID,
        "type": "function_call",
        "status": status,
        "call_id": sc.TOOL_CALL_ID,
        "name": sc.TOOL_NAME,
        "arguments": arguments,
    }


def response_object(model: str, body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    """A ``Response`` as OpenAI returns it (echoing the request's settings)."""
    done = status == "completed"
    output = [_function_call(sc.TOOL_ARGS) if sc.wants_tool(model) else _message(sc.TEXT)] if done else []
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "metadata": body.get("metadata", {}),
        "usage": _usage() if done else None,
    }


async def stream_response(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    sequence = 0

    async def emit(kind: str, **fields: Any) -> None:
        nonlocal sequence
        payload = orjson.dumps({"type": kind, "sequence_number": sequence, **fields})
        await response.write(b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n")
        sequence += 1

    await emit("response.created", response=response_object(model, body, "in_progress"))
    await emit("response.in_progress", response=response_object(model, body, "in_progress"))
    if sc.wants_tool(model):
        await emit("response.output_item.added", output_index=0, item=_function_call("", "in_progress"))
        for piece in sc.TOOL_ARG_PIECES:
            await emit(
                "response.function_call_arguments.delta",
                item_id=FUNCTION_CALL_ID,
                output_index=0,
                delta=piece,
            )
        await emit(
            "response.function_call_arguments.done",
            item_id=FUNCTION_CALL_ID,
            output_index=0,
            arguments=sc.TOOL_ARGS,
        )
        await emit("response.output_item.done", output_index=0, item=_function_call(sc.TOOL_ARGS))
    else:
        await _stream_text(emit, failing=model == "fail-midstream")
        if model == "fail-midstream":
            failed = {**response_object(model, body, "failed"), "error": _failure()}
            await emit("response.failed", response=failed)
            await response.write_eof()
            return response
    await emit("response.completed", response=response_object(model, body))
    await response.write_eof()
    return response


def _failure() -> dict[str, Any]:
    return {"code": "server_error", "message": sc.ERROR_MESSAGE}


async def _stream_text(emit: Any, *, failing: bool) -> None:
    part = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
    await emit("response.output_item.added", output_index=0, item=_message("", "in_progress"))
    await emit(
        "response.content_part.added",
        **part,
        part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
    )
    for piece in sc.STREAM_PIECES[:1] if failing else sc.STREAM_PIECES:
        await emit("response.output_text.delta", **part, delta=piece, logprobs=[])
    if failing:
        return
    await emit("response.output_text.done", **part, text=sc.TEXT, logprobs=[])
    await emit(
        "response.content_part.done",
        **part,
        part={"type": "output_text", "text": sc.TEXT, "annotations": [], "logprobs": []},
    )
    await emit("response.output_item.done", output_index=0, item=_message(sc.TEXT))


def text_completion(model: str) -> dict[str, Any]:
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"text": sc.TEXT, "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": sc.PROMPT_TOKENS,
            "completion_tokens": sc.COMPLETION_TOKENS,
            "total_tokens": sc.PROMPT_TOKENS + sc.COMPLETION_TOKENS,
        },
    }


async def stream_completion(request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": model}

    async def emit(text: str, finish: str | None = None) -> None:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        await response.write(b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n")

    for piece in sc.STREAM_PIECES:
        await emit(piece)
        if model == "fail-midstream":
            error = {"message": sc.ERROR_MESSAGE, "type": "server_error", "param": None, "code": None}
            await response.write(b"data: " + orjson.dumps({"error": error}) + b"\n\n")
            await response.write_eof()
            return response
    await emit("", "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = text_completion(model)["usage"]
        await response.write(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
