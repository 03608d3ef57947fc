"""The scenarios every fake upstream plays, chosen by the upstream model name it is sent.

Each provider's fake speaks that provider's documented wire format, but all fakes tell the same
story, so one conformance suite can run every adapter through the same cases:

- any model: a text answer ``TEXT`` with usage ``PROMPT_TOKENS``/``COMPLETION_TOKENS``;
  streamed as several chunks (``STREAM_PIECES``) with usage at the end.
- a model containing ``tool``: one tool call ``get_weather`` with arguments ``TOOL_ARGS``,
  finish reason ``tool_calls``; streamed with the arguments split over at least two chunks.
- a model ``error-<status>`` (e.g. ``error-429``): that provider's error body with that status
  (``retry-after: 0`` on 429) and the message ``ERROR_MESSAGE``.
- a model ``hang``: never answers (the fake waits until the test ends).
"""

TEXT = "Hello from the fake upstream"
STREAM_PIECES = ("Hello", " from the", " fake upstream")
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
TOOL_NAME = "get_weather"
TOOL_ARGS = '{"city": "Paris"}'
TOOL_ARG_PIECES = ('{"city": ', '"Paris"}')
TOOL_CALL_ID = "call_fake_0001"
ERROR_MESSAGE = "fake upstream error"


def error_status(model: str) -> int | None:
    """``error-429`` -> 429; anything else -> None."""
    if model.startswith("error-"):
        try:
            return int(model.removeprefix("error-")[:3])
        except ValueError:
            return None
    return None


def wants_tool(model: str) -> bool:
    return "tool" in model
