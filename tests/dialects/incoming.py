"""``Incoming`` requests for dialect tests, as the api layer builds them from HTTP."""

from __future__ import annotations

from typing import Any

import orjson

from asbru_gateway.dialects.base import Endpoint, Incoming


def incoming(
    path: str, body: dict[str, Any], *, path_model: str | None = None, family: str | None = None
) -> Incoming:
    """A ``POST {path}`` chat request with a JSON ``body``."""
    return Incoming(
        request_id="rid",
        endpoint=Endpoint("POST", path, "chat"),
        body=orjson.dumps(body),
        headers=[],
        query=b"",
        path_model=path_model,
        family=family,
    )
