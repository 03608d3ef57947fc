"""Plugins made for the contract tests: each hook records into a journal and acts as its settings say.

Journals live here, keyed by a name in the settings, because settings are validated (copied) by
the plugin type's pydantic model: a list passed in settings would not be the test's list.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict

from asbru_gateway.core.attempt import Attempt
from asbru_gateway.core.reply import Reply
from asbru_gateway.core.request import LLMRequest
from asbru_gateway.core.schema import Chunk
from asbru_gateway.errors import GatewayError
from asbru_gateway.plugins.base import Outcome, PluginBase, ShortCircuit

JOURNALS: dict[str, list[str]] = defaultdict(list)
GATES: dict[str, asyncio.Event] = {}
"""Completion hooks that wait on a gate: set from the test to let them finish."""
INSTANCES: list[ContractPlugin] = []
ANSWER = {"role": "assistant", "content": "from cache"}


class ContractSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    journal: str = "default"
    pre: Literal["none", "raise", "deny", "answer", "replay", "identity"] = "none"
    post: Literal["none", "raise", "tag"] = "none"
    chunk: Literal["none", "raise", "upper"] = "none"
    attempt_header: str | None = None
    """before_attempt adds ``x-trace: <value>-<request id>``."""
    pin_key: str | None = None
    complete_gate: str | None = None
    fail_start: bool = False
    version: int = 0
    """Changing it changes the settings (a new instance) without changing behaviour."""


class ContractPlugin(PluginBase):
    Settings = ContractSettings

    def __init__(self, name: str, settings: BaseModel) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, ContractSettings)
        self.config = settings
        self.journal = JOURNALS[settings.journal]
        self.started = False
        self.stopped = False
        INSTANCES.append(self)

    async def start(self) -> None:
        if self.config.fail_start:
            raise RuntimeError("cannot connect")
        self.started = True
        self.journal.append(f"start:{self.name}")

    async def stop(self) -> None:
        self.stopped = True
        self.journal.append(f"stop:{self.name}")

    async def pre_request(self, request: LLMRequest) -> ShortCircuit | None:
        self.journal.append(f"pre:{self.name}")
        action = self.config.pre
        if action == "raise":
            raise RuntimeError("plugin bug")
        if action == "deny":
            raise GatewayError("denied by policy", status=403, type="permission_error", code="denied")
        if action == "answer":
            answer = {
                "id": "cached",
                "object": "chat.completion",
                "created": 0,
                "model": request.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "from cache"},
                        "finish_reason": "stop",
                    }
                ],
            }
            return ShortCircuit.answer(Reply(data=answer))
        if action == "replay":
            return ShortCircuit.replay(_replayed(request.model))
        if action == "identity":
            credential = request.credential
            self.journal.append(f"credential:{credential.source if credential else None}")
            self.journal.append(f"authorization:{request.headers.get('authorization')}")
        return None

    async def before_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        self.journal.append(f"before:{self.name}:{attempt.provider}:{attempt.key}")
        if self.config.attempt_header:
            attempt.headers["x-trace"] = f"{self.config.attempt_header}-{request.request_id}"
        if self.config.pin_key:
            attempt.key = self.config.pin_key

    async def after_attempt(self, request: LLMRequest, attempt: Attempt) -> None:
        self.journal.append(f"after:{self.name}:{attempt.status}")

    async def post_response(self, request: LLMRequest, outcome: Outcome) -> Outcome | None:
        self.journal.append(f"post:{self.name}")
        if self.config.post == "raise":
            raise RuntimeError("plugin bug")
        if self.config.post == "tag":
            return Outcome(outcome.status, outcome.reply, outcome.error, [*outcome.headers, (b"x-tag", b"1")])
        return None

    def on_chunk(self, request: LLMRequest, chunk: Chunk) -> Chunk | None:
        self.journal.append(f"chunk:{self.name}")
        if self.config.chunk == "raise":
            raise RuntimeError("plugin bug")
        if self.config.chunk == "upper":
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    delta["content"] = delta["content"].upper()
        return None

    async def on_complete(self, request: LLMRequest, outcome: Outcome) -> None:
        if self.config.complete_gate:
            await GATES[self.config.complete_gate].wait()
        self.journal.append(f"complete:{self.name}:{outcome.status}")


class FailClosed(ContractPlugin):
    fail_open = False


def _replayed(model: str) -> list[Chunk]:
    base = {"id": "replay", "object": "chat.completion.chunk", "created": 0, "model": model}
    pieces = [{"role": "assistant", "content": ""}, {"content": "cached"}, {"content": " answer"}]
    chunks: list[Chunk] = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # type: ignore[typeddict-item]
        for delta in pieces
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # type: ignore[typeddict-item]
    return chunks
