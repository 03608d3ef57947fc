"""The MCP section of the config contract: what it refuses, and what it adds to the revision."""

from __future__ import annotations

from typing import Any

import pytest

from asbru_gateway.config.loader import parse_config
from asbru_gateway.errors import ConfigError
from asbru_gateway.mcp.names import exposed_names
from tests.gateway_server import run_gateway
from tests.mcp_layer.fixtures import config, toy


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"name": "a", "transport": "stdio"}, "transport stdio needs a command"),
        ({"name": "a", "transport": "http"}, "transport http needs a url"),
        ({"name": "a", "transport": "http", "url": "http://x/mcp", "command": "y"}, "are for stdio"),
        ({"name": "a", "transport": "stdio", "command": "y", "url": "http://x"}, "are for http and sse"),
        ({"name": "a", "transport": "sse", "url": "http://x/sse", "protocol": "modern"}, "predates"),
        ({"name": "a_b", "transport": "stdio", "command": "y"}, "name"),
        ({"name": "a", "transport": "http", "url": "ftp://x"}, "http:// or https://"),
        (
            {"name": "a", "transport": "http", "url": "http://x", "secret_headers": {"Authorization": "xyz"}},
            "secret_headers",
        ),
    ],
)
def test_invalid_servers_are_refused(server: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(server))


def test_bundles_name_known_servers() -> None:
    with pytest.raises(ConfigError, match="unknown MCP server 'nope'"):
        parse_config(config(toy(), serve={"bundles": [{"name": "b", "tools": ["nope/*"]}]}))
    with pytest.raises(ConfigError, match="duplicate MCP server name"):
        parse_config(config(toy(), toy()))


def test_no_mcp_section_keeps_the_revision_and_secrets_are_listed() -> None:
    plain = parse_config({"providers": [{"name": "echo", "type": "echo"}]})
    assert b'"mcp"' not in plain.canonical_json()
    server = {
        "name": "gh",
        "transport": "http",
        "url": "https://x/mcp",
        "secret_headers": {"Authorization": "env:GH"},
    }
    with_mcp = parse_config(config(server, serve={"token": "file:/run/token"}))
    assert {"env:GH", "file:/run/token"} <= set(with_mcp.secret_refs())
    assert plain.revision != with_mcp.revision


def test_a_missing_secret_rejects_the_config_and_the_last_one_keeps_serving() -> None:
    with run_gateway(config(toy())) as gateway:
        server = {
            "name": "gh",
            "transport": "http",
            "url": "https://x/mcp",
            "secret_headers": {"A": "env:ASBRU_NOPE"},
        }
        with pytest.raises(ConfigError, match="ASBRU_NOPE"):
            gateway.apply(config(server))
        assert gateway.app.gateway.current is not None
        assert (
            gateway.app.gateway.current.mcp is not None and "toy" in gateway.app.gateway.current.mcp.servers
        )


def test_exposed_names_are_unique_and_fit_providers() -> None:
    names = exposed_names("srv", ["a.b", "a_b", "x" * 80, "ok-name", "a.b/c"])
    assert names["a_b"] == "srv__a_b" and names["ok-name"] == "srv__ok-name"
    assert len(set(names.values())) == 5
    assert all(
        len(name) <= 64 and name.replace("_", "").replace("-", "").isalnum() for name in names.values()
    )
