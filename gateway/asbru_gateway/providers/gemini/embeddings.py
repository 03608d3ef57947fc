"""OpenAI ``/embeddings`` <-> Gemini ``batchEmbedContents``.

The batch method is used even for one input, so one code path serves both shapes of ``input``.
Each Gemini request names the model again (``models/<name>``), as the API requires.
Gemini reports no token counts for embeddings, so usage is zero and ``Reply.usage`` None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asbru_gateway.core.reply import Reply
from asbru_gateway.errors import InvalidRequestError, UnsupportedError, UpstreamProtocolError
from asbru_gateway.providers.gemini.response import load_object

JSON = dict[str, Any]


def embeddings_body(request: Mapping[str, Any], model: str) -> JSON:
    """The ``batchEmbedContents`` body for an OpenAI embeddings request."""
    texts = _inputs(request.get("input"))
    dimensions = request.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int)):
        raise InvalidRequestError("dimensions must be an integer", param="dimensions")
    requests = []
    for text in texts:
        item: JSON = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            item["outputDimensionality"] = dimensions
        requests.append(item)
    return {"requests": requests}


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(item, (int, list)) for item in value):
        raise UnsupportedError("Gemini embeds text only, not token arrays", param="input")
    raise InvalidRequestError("input must be a string or a non-empty array of strings", param="input")


def embeddings_result(body: bytes, model: str) -> Reply:
    """Gemini ``{"embeddings": [{"values": [...]}]}`` -> OpenAI ``list`` of ``embedding`` objects."""
    data = load_object(body)
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list):
        raise UpstreamProtocolError("Gemini embeddings answer has no embeddings array")
    items = []
    for index, embedding in enumerate(embeddings):
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise UpstreamProtocolError("Gemini embedding without values")
        items.append({"object": "embedding", "index": index, "embedding": values})
    answer = {
        "object": "list",
        "data": items,
        "model": model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    return Reply(data=answer, usage=None)
