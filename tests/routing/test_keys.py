"""Key choice (``choose_key``) and route target ordering (``RouteTable``): who gets the traffic.

Statistical checks draw enough samples that the tolerance is five binomial standard deviations:
a correct implementation fails one with probability below 1e-6, while a wrong split (say 50/50
instead of 75/25) lands more than ten deviations away and fails every time.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import httpx
import pytest

from asbru_gateway.config.loader import parse_config
from asbru_gateway.config.model import FallbackTrigger, ProviderConfig
from asbru_gateway.config.secrets import SecretResolver
from asbru_gateway.errors import InvalidRequestError, ModelNotFoundError
from asbru_gateway.pool.provider_runtime import ProviderRuntime, build_runtime
from asbru_gateway.routing.keys import choose_key
from asbru_gateway.routing.plan import MAX_REQUEST_FALLBACKS, Candidate, RouteTable
from tests.conftest import TEST_KEYS
from tests.fakes import scenarios as sc
from tests.fakes.server import Recorder
from tests.gateway_server import run_gateway

SIGMAS = 5


def _tolerance(p: float, n: int) -> float:
    """Five standard deviations of a binomial share with success probability ``p`` over ``n`` draws."""
    return SIGMAS * math.sqrt(p * (1 - p) / n)


def _runtime(keys: list[dict[str, Any]]) -> ProviderRuntime:
    config = ProviderConfig.model_validate(
        {"name": "p", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "keys": keys}
    )
    secrets = {key["secret"].removeprefix("secret:"): f"value-of-{key['name']}" for key in keys}
    return build_runtime(config, SecretResolver(mapping=secrets))


# --- choose_key ---------------------------------------------------------------------------------


def test_single_key_is_always_chosen() -> None:
    runtime = _runtime([{"name": "only", "secret": "secret:only"}])
    assert {choose_key(runtime, "gpt-4o").name for _ in range(50)} == {"only"}  # type: ignore[union-attr]
    assert choose_key(runtime, "gpt-4o").value.reveal() == "value-of-only"  # type: ignore[union-attr]


def test_provider_without_keys_gets_none() -> None:
    config = ProviderConfig.model_validate({"name": "echo", "type": "echo"})
    runtime = build_runtime(config, SecretResolver())
    assert choose_key(runtime, "anything") is None


def test_choice_is_weight_proportional() -> None:
    runtime = _runtime(
        [
            {"name": "heavy", "secret": "secret:heavy", "weight": 3},
            {"name": "light", "secret": "secret:light", "weight": 1},
        ]
    )
    draws = 20_000
    counts = Counter(choose_key(runtime, "gpt-4o").name for _ in range(draws))  # type: ignore[union-attr]
    assert set(counts) == {"heavy", "light"}
    assert abs(counts["heavy"] / draws - 0.75) <= _tolerance(0.75, draws)


def test_model_allow_list_and_exclude_list() -> None:
    runtime = _runtime(
        [
            {"name": "gpt4-only", "secret": "secret:a", "models": ["gpt-4o"]},
            {"name": "not-gpt4", "secret": "secret:b", "exclude_models": ["gpt-4o"]},
            {"name": "anything", "secret": "secret:c", "weight": 1},
        ]
    )
    for_gpt4 = {choose_key(runtime, "gpt-4o").name for _ in range(300)}  # type: ignore[union-attr]
    for_other = {choose_key(runtime, "o3-mini").name for _ in range(300)}  # type: ignore[union-attr]
    # 300 draws from two equally weighted keys miss one of them with probability 2 * 2**-300.
    assert for_gpt4 == {"gpt4-only", "anything"}
    assert for_other == {"not-gpt4", "anything"}


def test_excluded_key_is_never_chosen_even_when_heaviest() -> None:
    runtime = _runtime(
        [
            {"name": "big", "secret": "secret:big", "weight": 1000, "exclude_models": ["o1"]},
            {"name": "small", "secret": "secret:small", "weight": 1},
        ]
    )
    assert {choose_key(runtime, "o1").name for _ in range(200)} == {"small"}  # type: ignore[union-attr]


def test_no_eligible_key_is_a_400_naming_provider_and_model() -> None:
    runtime = _runtime(
        [
            {"name": "a", "secret": "secret:a", "models": ["gpt-4o"]},
            {"name": "b", "secret": "secret:b", "exclude_models": ["o1"], "models": ["o1", "gpt-4o"]},
        ]
    )
    with pytest.raises(InvalidRequestError) as raised:
        choose_key(runtime, "o1")
    error = raised.value
    assert error.status == 400
    assert error.param == "model"
    assert "'p'" in error.message and "'o1'" in error.message
    # Still raised on the second call, when the (empty) eligibility is served from the cache.
    with pytest.raises(InvalidRequestError):
        choose_key(runtime, "o1")


def test_eligibility_cache_is_bounded() -> None:
    runtime = _runtime([{"name": "a", "secret": "secret:a"}, {"name": "b", "secret": "secret:b"}])
    for index in range(3000):  # model names come from clients: the cache must not grow with them
        choose_key(runtime, f"model-{index}")
    assert 0 < len(runtime.key_cache) <= 1024


# --- keys end to end ------------------------------------------------------------------------------


def _two_key_config(url: str) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "openai",
                "type": "openai",
                "base_url": f"{url}/v1",
                "keys": [
                    {"name": "primary", "secret": "env:ASBRU_TEST_OPENAI_KEY", "weight": 3},
                    {"name": "secondary", "secret": "env:ASBRU_TEST_OPENAI_KEY_2", "weight": 1},
                ],
                "network": {"max_retries": 0},
            }
        ],
    }


def test_gateway_splits_traffic_between_keys_by_weight(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    requests = 400
    with (
        run_gateway(_two_key_config(url)) as gateway,
        httpx.Client(base_url=gateway.url, timeout=10) as client,
    ):
        for _ in range(requests):
            response = client.post(
                "/v1/chat/completions",
                json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"] == sc.TEXT
    seen = Counter(item.headers.get("Authorization") for item in recorder.requests)
    primary = f"Bearer {TEST_KEYS['ASBRU_TEST_OPENAI_KEY']}"
    secondary = f"Bearer {TEST_KEYS['ASBRU_TEST_OPENAI_KEY_2']}"
    assert set(seen) == {primary, secondary}, "only the configured keys, each in full"
    assert sum(seen.values()) == requests
    # sigma = sqrt(0.75 * 0.25 / 400) ~ 0.022, so the share must be within 0.75 +- 0.108.
    assert abs(seen[primary] / requests - 0.75) <= _tolerance(0.75, requests)


def test_gateway_honours_key_model_lists(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = _two_key_config(url)
    config["providers"][0]["keys"][0]["models"] = ["gpt-4o"]
    config["providers"][0]["keys"][1]["exclude_models"] = ["gpt-4o", "o1"]
    with run_gateway(config) as gateway, httpx.Client(base_url=gateway.url, timeout=10) as client:
        for model in ("gpt-4o", "gpt-4o-mini", "o1"):
            response = client.post(
                "/v1/chat/completions",
                json={"model": f"openai/{model}", "messages": [{"role": "user", "content": "hi"}]},
            )
            if model == "o1":
                # Neither key may serve o1: a client error, and nothing sent upstream.
                assert response.status_code == 400
                error = response.json()["error"]
                assert error["type"] == "invalid_request_error" and error["param"] == "model"
            else:
                assert response.status_code == 200
    sent = {item.json["model"]: item.headers["Authorization"] for item in recorder.requests}
    assert sent == {
        "gpt-4o": f"Bearer {TEST_KEYS['ASBRU_TEST_OPENAI_KEY']}",
        "gpt-4o-mini": f"Bearer {TEST_KEYS['ASBRU_TEST_OPENAI_KEY_2']}",
    }


# --- route targets ----------------------------------------------------------------------------------


def _table(routes: list[dict[str, Any]], providers: tuple[str, ...] = ("a", "b", "c")) -> RouteTable:
    config = parse_config(
        {
            "providers": [{"name": name, "type": "echo"} for name in providers],
            "routes": routes,
        }
    )
    return RouteTable(config)


@pytest.fixture
def weighted_table() -> RouteTable:
    return _table(
        [
            {"name": "even", "targets": [{"provider": "a", "model": "m1"}, {"provider": "b", "model": "m2"}]},
            {
                "name": "skewed",
                "targets": [
                    {"provider": "a", "model": "m1", "weight": 3},
                    {"provider": "b", "model": "m2", "weight": 1},
                ],
            },
        ]
    )


def test_equal_weights_use_both_targets_evenly(weighted_table: RouteTable) -> None:
    draws = 4000
    firsts = Counter(weighted_table.plan("even").candidates[0] for _ in range(draws))
    assert set(firsts) == {Candidate("a", "m1"), Candidate("b", "m2")}
    assert abs(firsts[Candidate("a", "m1")] / draws - 0.5) <= _tolerance(0.5, draws)


def test_weights_split_the_first_choice(weighted_table: RouteTable) -> None:
    draws = 4000
    firsts = Counter(weighted_table.plan("skewed").candidates[0] for _ in range(draws))
    assert abs(firsts[Candidate("a", "m1")] / draws - 0.75) <= _tolerance(0.75, draws)


def test_every_target_of_a_tier_is_a_fallback_of_the_chosen_one(weighted_table: RouteTable) -> None:
    for _ in range(200):
        candidates = weighted_table.plan("skewed").candidates
        assert sorted(candidates, key=lambda c: c.provider) == [Candidate("a", "m1"), Candidate("b", "m2")]


def test_priority_tiers_lower_first_higher_only_as_fallback() -> None:
    table = _table(
        [
            {
                "name": "tiered",
                "targets": [
                    # A huge weight must not pull a higher-priority-number target ahead of a lower one.
                    {"provider": "c", "model": "backup", "priority": 1, "weight": 1000},
                    {"provider": "a", "model": "main-1", "priority": 0},
                    {"provider": "b", "model": "main-2", "priority": 0},
                    {"provider": "c", "model": "last", "priority": 7},
                ],
            }
        ]
    )
    heads: Counter[Candidate] = Counter()
    for _ in range(400):
        candidates = table.plan("tiered").candidates
        assert len(candidates) == 4
        assert {c.model for c in candidates[:2]} == {"main-1", "main-2"}
        assert candidates[2:] == (Candidate("c", "backup"), Candidate("c", "last"))
        heads[candidates[0]] += 1
    assert set(heads) == {Candidate("a", "main-1"), Candidate("b", "main-2")}


def test_route_triggers_and_default_triggers() -> None:
    table = _table(
        [
            {"name": "picky", "targets": [{"provider": "a", "model": "m"}], "fallback_on": ["rate_limited"]},
            {"name": "default", "targets": [{"provider": "a", "model": "m"}]},
        ]
    )
    assert table.plan("picky").triggers == frozenset({FallbackTrigger.RATE_LIMITED})
    default = table.plan("default").triggers
    assert default == table.plan("a/m").triggers
    assert "server_error" in default and "bad_request" not in default and "auth_error" not in default


def test_provider_slash_model_and_request_fallbacks() -> None:
    table = _table([{"name": "r", "targets": [{"provider": "a", "model": "m"}]}])
    plan = table.plan("b/meta-llama/llama-3-70b", ["r", "c/x"])
    assert plan.candidates == (
        Candidate("b", "meta-llama/llama-3-70b"),
        Candidate("a", "m"),
        Candidate("c", "x"),
    )


@pytest.mark.parametrize(
    ("model", "fallbacks", "error", "param"),
    [
        ("nope", None, ModelNotFoundError, "model"),
        ("zz/m", None, ModelNotFoundError, "model"),
        ("a/", None, ModelNotFoundError, "model"),
        ("a/m", ["b/m", "unknown"], ModelNotFoundError, "fallbacks[1]"),
        ("a/m", "b/m", InvalidRequestError, "fallbacks"),
        ("a/m", [1], InvalidRequestError, "fallbacks"),
        ("a/m", ["b/m"] * (MAX_REQUEST_FALLBACKS + 1), InvalidRequestError, "fallbacks"),
    ],
)
def test_unresolvable_plans_are_client_errors(
    model: str, fallbacks: object, error: type[Exception], param: str
) -> None:
    table = _table([])
    with pytest.raises(error) as raised:
        table.plan(model, fallbacks)
    assert raised.value.param == param  # type: ignore[attr-defined]
