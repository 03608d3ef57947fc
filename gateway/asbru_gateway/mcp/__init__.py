"""MCP: the gateway's connections to MCP servers, the tools they offer, and their execution.

A layer of its own, between the plugins and the pools (``plugins -> mcp -> pool``): the request
engine asks it which tools to offer a request (``hub.McpHub.offer``), the agent loop asks it to run
the calls a model made (``McpHub.call``), and the api layer serves its tools to MCP clients
(``serve``). Connections (``connection``) belong to the gateway, not to a config revision: a server
whose connection settings are unchanged keeps its session or subprocess across reloads, the way a
provider keeps its pool.

Every protocol exchange goes through the ``mcp`` SDK. The SDK is imported only by ``connection``
and ``serve``, and those only when a config has MCP servers: it costs ~0.7 s of import time that a
gateway without MCP never pays.
"""
