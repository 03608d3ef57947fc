"""``Offer``: the MCP tools one request gets, narrowed without a server."""

from __future__ import annotations

from asbru_gateway.mcp.hub import Offer
from asbru_gateway.mcp.tools import McpTool


def test_auto_only_keeps_the_tools_the_gateway_runs_for_a_text_only_dialect() -> None:
    tools = {f"s__{name}": McpTool("s", name, f"s__{name}", {}) for name in ("get", "delete")}
    offer = Offer([tool.core for tool in tools.values()], tools, frozenset({"s__get"}))
    kept = offer.auto_only()
    assert [tool["function"]["name"] for tool in kept.tools] == ["s__get"]  # type: ignore[typeddict-item]
    assert list(kept.by_name) == ["s__get"] and kept.auto == {"s__get"}
