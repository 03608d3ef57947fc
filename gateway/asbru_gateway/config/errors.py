"""Config errors live in the gateway's one exception tree; re-exported here for the config package."""

from asbru_gateway.errors import ConfigError

__all__ = ["ConfigError"]
