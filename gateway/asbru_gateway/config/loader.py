"""Parse and validate a ``GatewayConfig`` from YAML or JSON text, with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from asbru_gateway.config import compat
from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.model import SCHEMA_MINOR, SCHEMA_VERSION, GatewayConfig


def parse_config(data: Any, *, source: str = "config") -> GatewayConfig:
    """Validate already-decoded data. Refuses other schema versions before looking further.

    A config of a newer ``schemaMinor`` than this gateway's is read leniently (``compat``): fields
    it does not know are ignored and logged; within its own minor, an unknown field is an error.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    version = data.get("schemaVersion", data.get("schema_version", SCHEMA_VERSION))
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"{source}: schemaVersion {version!r} is not supported (this gateway reads {SCHEMA_VERSION!r})"
        )
    minor = data.get("schemaMinor", data.get("schema_minor", 0))
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        raise ConfigError(f"{source}: schemaMinor must be a non-negative integer, got {minor!r}")
    context: dict[str, Any] = {compat.LENIENT: minor > SCHEMA_MINOR}
    try:
        config = GatewayConfig.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(f"{source}: {format_validation_error(error)}") from None
    compat.report_ignored(source, minor, SCHEMA_MINOR, context.get(compat.IGNORED, []))
    return config


def load_config_text(text: str | bytes, *, source: str = "config") -> GatewayConfig:
    """Parse YAML (a superset of JSON) or JSON text. JSON goes through orjson, the fast path."""
    stripped = text.lstrip()
    try:
        data = orjson.loads(text) if stripped[:1] in ("{", b"{") else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{source}: not valid YAML/JSON: {_syntax_error(error)}") from None
    return parse_config(data, source=source)


def _syntax_error(error: Exception) -> str:
    """The parser's complaint and where; never its excerpt of the text, which may quote a pasted key."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{error.problem or error.context or 'syntax error'}{where}"
    return str(error)


def load_config_file(path: str | Path) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    return load_config_text(text, source=str(path))


def format_validation_error(error: ValidationError) -> str:
    """``providers.0.pool.concurrency: Input should be ...``; input values are left out (secrets)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(root)"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)
