"""Config compatibility across schema minors: newer configs read leniently, own minor strictly."""

from __future__ import annotations

import copy
import logging
from typing import Any

import orjson
import pytest

from asbru_gateway.config.compat import canonical_dump, downgraded
from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.loader import parse_config
from asbru_gateway.config.model import SCHEMA_MINOR, GatewayConfig

BASE: dict[str, Any] = {
    "schemaVersion": "asbru.dev/v1alpha1",
    "providers": [{"name": "echo", "type": "echo"}],
    "routes": [{"name": "chat", "targets": [{"provider": "echo", "model": "m"}]}],
}


def config(minor: int | None, **extra: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    if minor is not None:
        data["schemaMinor"] = minor
    for where, (key, value) in extra.items():
        target = data if where == "top" else data[where][0]
        target[key] = value
    return data


NEWER = SCHEMA_MINOR + 1


def test_a_newer_minor_with_additive_fields_is_read_leniently(caplog: pytest.LogCaptureFixture) -> None:
    data = config(NEWER, top=("tracing", {"on": True}), providers=("futureOption", 3))
    data["routes"][0]["targets"][0]["cost"] = 0.5
    with caplog.at_level(logging.WARNING, logger="asbru_gateway.config.compat"):
        parsed = parse_config(data, source="lenient-test")
        parse_config(data, source="lenient-test")  # read again (a watch replay): logged once
    assert parsed.providers[0].name == "echo"
    assert parsed.schema_minor == NEWER
    warnings = [r.getMessage() for r in caplog.records if "lenient-test" in r.getMessage()]
    assert len(warnings) == 1
    for name in ("GatewayConfig.tracing", "ProviderConfig.futureOption", "RouteTarget.cost"):
        assert name in warnings[0]


def test_a_newer_minor_still_validates_what_the_gateway_knows() -> None:
    data = config(NEWER, providers=("pool", {"concurrency": -1}))
    with pytest.raises(ConfigError, match=r"providers\.0\.pool\.concurrency"):
        parse_config(data)


@pytest.mark.parametrize("minor", [None, 0, SCHEMA_MINOR])
def test_an_unknown_field_within_a_known_minor_is_a_typo(minor: int | None) -> None:
    with pytest.raises(ConfigError, match=r"providers\.0\.pool_size: Extra inputs are not permitted"):
        parse_config(config(minor, providers=("pool_size", 3)))


@pytest.mark.parametrize("minor", [-1, "1", True, 1.5])
def test_schema_minor_must_be_a_non_negative_integer(minor: Any) -> None:
    with pytest.raises(ConfigError, match="schemaMinor must be a non-negative integer"):
        parse_config(config(None, top=("schemaMinor", minor)))


def test_a_config_without_a_minor_keeps_its_revision() -> None:
    """Configs written before minors existed hash as they did: no minor-1 field appears in them."""
    parsed = parse_config(config(None))
    dumped = orjson.loads(parsed.canonical_json())
    assert "schemaMinor" not in dumped
    assert "allow_private_network" not in dumped["providers"][0]
    minor_1 = {
        "schema_minor": True,
        "mcp": True,
        "governance": True,
        "providers": {"__all__": {"allow_private_network"}},
    }
    legacy = parsed.model_dump(mode="json", by_alias=True, exclude=minor_1)
    assert parsed.canonical_json() == orjson.dumps(legacy, option=orjson.OPT_SORT_KEYS)


def test_a_non_default_newer_field_counts_in_the_revision_of_an_older_minor_config() -> None:
    """A file written without schemaMinor may still use a newer field: it must not hash away."""
    guarded = parse_config(config(None, providers=("allow_private_network", False)))
    assert guarded.revision != parse_config(config(None)).revision


def test_downgraded_configs_carry_only_the_old_fields_and_hash_alike_on_both_sides() -> None:
    """The operator writes the oldest minor its pods accept: an old reader then sees no field it
    does not know, and a newer reader computes the same revision from the same bytes."""
    current = parse_config(config(SCHEMA_MINOR))
    old = downgraded(current, 0)
    written = old.canonical_json()
    assert "schemaMinor" not in orjson.loads(written)
    assert canonical_dump(old, 0) == orjson.loads(written)
    reread = parse_config(orjson.loads(written))
    assert reread.revision == old.revision
    assert isinstance(reread, GatewayConfig)
