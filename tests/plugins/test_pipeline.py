"""The plugin contract v2 (``asbru_gateway.plugins.pipeline``), clause by clause, mostly over HTTP."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import httpx
import orjson
import pytest

from asbru_gateway.core.request import LLMRequest
from asbru_gateway.errors import ConfigError
from asbru_gateway.observability.metrics import PLUGIN_ERRORS
from asbru_gateway.plugins.base import Outcome
from asbru_gateway.plugins.builtin import registry
from asbru_gateway.plugins.pipeline import Pipeline
from tests.fakes.server import Recorder
from tests.gateway_server import run_gateway
from tests.plugins.contract_plugins import GATES, INSTANCES, JOURNALS, ContractPlugin, FailClosed
from tests.waiting import wait_until

HELLO = [{"role": "user", "content": "hello there"}]
CHAT = "/v1/chat/completions"
COMPLETE_CBA = ["complete:c:200", "complete:b:200", "complete:a:200"]


@pytest.fixture(autouse=True)
def _contract_plugin_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.PLUGIN_TYPES, "contract", ContractPlugin)
    monkeypatch.setitem(registry.PLUGIN_TYPES, "contract-closed", FailClosed)
    JOURNALS.clear()
    GATES.clear()
    INSTANCES.clear()


def plugin(name: str, order: int = 0, type_: str = "contract", **settings: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "order": order, "settings": {"journal": name, **settings}}


def echo_config(*plugins: dict[str, Any], **echo_options: Any) -> dict[str, Any]:
    return {
        "providers": [{"name": "echo", "type": "echo", "options": echo_options}],
        "plugins": list(plugins),
    }


def journal(*kinds: str) -> list[str]:
    """The shared journal (plugins that log to "shared"), only entries of ``kinds`` if given."""
    entries = JOURNALS["shared"]
    return [entry for entry in entries if entry.split(":")[0] in kinds] if kinds else entries


def _request(stream: bool = False) -> LLMRequest:
    body = {"model": "m", "messages": HELLO}
    return LLMRequest(
        request_id="r", operation="chat", dialect="openai.chat", model="m", stream=stream, core=body
    )


def _instances(*names: str) -> list[ContractPlugin]:
    return [ContractPlugin(name, ContractPlugin.Settings(journal="shared")) for name in names]


# --- clause 1, 4, 6, 8: order, short-circuit, post in reverse, completion ------------------------


async def test_pre_in_order_post_and_complete_in_reverse() -> None:
    pipeline = Pipeline(_instances("a", "b", "c"))
    request = _request()
    reached, short = await pipeline.pre(request)
    assert (reached, short) == (3, None)
    outcome = await pipeline.post(request, Outcome(200), reached)
    await pipeline.complete(request, outcome, reached)
    assert journal("pre") == ["pre:a", "pre:b", "pre:c"]
    assert journal("post", "complete") == ["post:c", "post:b", "post:a", *COMPLETE_CBA]


async def test_short_circuit_skips_later_plugins_and_their_hooks() -> None:
    a, b, c = _instances("a", "b", "c")
    b.config = b.Settings(journal="shared", pre="answer")
    pipeline = Pipeline([a, b, c])
    reached, short = await pipeline.pre(_request())
    assert short is not None and short.outcome.reply is not None
    assert short.outcome.reply.data["choices"][0]["message"]["content"] == "from cache"
    await pipeline.post(_request(), short.outcome, reached)
    assert journal() == ["pre:a", "pre:b", "post:b", "post:a"]


async def test_a_gateway_error_from_a_pre_hook_is_the_answer() -> None:
    a, b = _instances("a", "b")
    a.config = a.Settings(journal="shared", pre="deny")
    reached, short = await Pipeline([a, b]).pre(_request())
    assert reached == 1 and short is not None and short.outcome.status == 403
    assert short.outcome.error is not None and short.outcome.error.code == "denied"


def test_hooks_over_http_in_order_with_post_and_chunk_hooks() -> None:
    config = echo_config(
        plugin("first", 1, post="tag", journal="shared"),
        plugin("second", 2, chunk="upper", pre="raise", journal="shared"),
        {**plugin("off", 3, journal="shared"), "enabled": False},
    )
    body = {"model": "echo/x", "messages": HELLO}
    with run_gateway(config) as gateway, httpx.Client(base_url=gateway.url) as client:
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200  # the buggy (fail-open) pre-hook did not reach the client
        assert response.headers["x-tag"] == "1"  # a post-hook may replace the outcome
        wait_until(lambda: len(journal("complete")) == 2, "completion hooks ran")
        assert journal("pre", "post", "complete") == [
            "pre:first",
            "pre:second",
            "post:second",
            "post:first",
            "complete:second:200",
            "complete:first:200",
        ]
        journal().clear()
        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as stream:
            text = "".join(stream.iter_text())
        wait_until(lambda: "complete:first:200" in journal(), "stream completion hooks ran")
    assert "HELLO" in text and "hello" not in text  # the chunk hook rewrote the chunks
    assert text.endswith("data: [DONE]\n\n")
    assert journal()[:2] == ["pre:first", "pre:second"]
    assert "post:first" not in journal()  # post_response is for non-stream answers
    assert "chunk:first" in journal() and "pre:off" not in journal()
    assert journal("before") == ["before:first:echo:None", "before:second:echo:None"]
    assert journal("after") == ["after:first:200", "after:second:200"]


# --- clause 4: short-circuit answers: JSON and a stream in the caller's dialect ------------------


def test_a_pre_hook_answers_a_stream_request_with_a_stream() -> None:
    config = echo_config(plugin("cache", pre="replay"))
    with run_gateway(config) as gateway, httpx.Client(base_url=gateway.url) as client:
        body = {"model": "echo/x", "messages": HELLO, "stream": True}
        with client.stream("POST", CHAT, json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [line for line in response.iter_lines() if line.startswith("data: ")]
        plain = client.post(CHAT, json={"model": "echo/x", "messages": HELLO})
    assert events[-1] == "data: [DONE]"
    chunks = [orjson.loads(event.removeprefix("data: ")) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "cached answer"
    # A stream answer to a request that did not ask for one is a plugin bug, not a silent mismatch.
    assert plain.status_code == 500 and plain.json()["error"]["code"] == "plugin_answer_mismatch"


def test_a_pre_hook_answers_json_in_place_of_the_provider() -> None:
    with run_gateway(echo_config(plugin("cache", pre="answer"))) as gateway:
        response = httpx.post(
            gateway.url + "/v1/chat/completions", json={"model": "echo/x", "messages": HELLO}
        )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from cache"


def test_hooks_see_headers_with_credentials_masked_and_the_credential_apart() -> None:
    with run_gateway(echo_config(plugin("auth", pre="identity"))) as gateway:
        httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "echo/x", "messages": HELLO},
            headers={"Authorization": "Bearer vk-secret-value"},
        )
    assert JOURNALS["auth"][2:4] == ["credential:authorization", "authorization:***"]


# --- clause 5: per-attempt hooks ----------------------------------------------------------------


def _openai(url: str, keys: int = 1) -> dict[str, Any]:
    names = ["ASBRU_TEST_OPENAI_KEY", "ASBRU_TEST_OPENAI_KEY_2"][:keys]
    return {
        "name": "up",
        "type": "openai",
        "base_url": f"{url}/v1",
        "keys": [{"name": f"k{i}", "secret": f"env:{name}"} for i, name in enumerate(names)],
        "network": {"max_retries": 2, "backoff_initial_s": 0},
    }


def test_attempt_headers_are_per_request(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = {"providers": [_openai(url)], "plugins": [plugin("trace", attempt_header="t")]}
    with run_gateway(config) as gateway:

        def call(i: int) -> None:
            response = httpx.post(
                gateway.url + "/v1/chat/completions",
                json={"model": "up/gpt-x", "messages": HELLO},
                headers={"x-request-id": f"req-{i}"},
            )
            assert response.status_code == 200

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(call, range(24)))
        plain = {"providers": [_openai(url)], "plugins": []}
        gateway.apply(plain)
        httpx.post(gateway.url + "/v1/chat/completions", json={"model": "up/gpt-x", "messages": HELLO})
    traced = sorted(r.headers.get("x-trace", "") for r in recorder.requests[:24])
    assert traced == sorted(f"t-req-{i}" for i in range(24))  # each its own, never another's
    assert "x-trace" not in recorder.requests[-1].headers  # nothing leaked into shared headers


def test_an_attempt_hook_pins_a_key_by_name(openai_upstream: tuple[str, Recorder]) -> None:
    url, recorder = openai_upstream
    config = {"providers": [_openai(url, keys=2)], "plugins": [plugin("pin", pin_key="k1")]}
    with run_gateway(config) as gateway:
        for _ in range(6):
            httpx.post(gateway.url + "/v1/chat/completions", json={"model": "up/gpt-x", "messages": HELLO})
    assert {r.headers["Authorization"] for r in recorder.requests} == {
        "Bearer sk-test-openai-second-key-987654"
    }
    assert JOURNALS["pin"][2].startswith("before:pin:up:k")  # after start and pre


def test_attempt_hooks_see_every_attempt_with_its_result(openai_upstream: tuple[str, Recorder]) -> None:
    url, _ = openai_upstream
    config = {"providers": [_openai(url)], "plugins": [plugin("count")]}
    with run_gateway(config) as gateway:
        response = httpx.post(
            gateway.url + "/v1/chat/completions", json={"model": "up/flaky-2-503", "messages": HELLO}
        )
    assert response.status_code == 200
    afters = [entry for entry in JOURNALS["count"] if entry.startswith("after:")]
    assert afters == ["after:count:503", "after:count:503", "after:count:200"]


# --- clause 8: completion hooks never delay the client --------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_completion_hook_does_not_delay_the_end_of_the_response(stream: bool) -> None:
    with run_gateway(echo_config(plugin("slow", complete_gate="gate"))) as gateway:
        gate = gateway.call(_make_event())
        GATES["gate"] = gate
        body = {"model": "echo/x", "messages": HELLO, "stream": stream}
        response = httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=5)
        assert response.status_code == 200  # complete, while the hook is still blocked
        assert response.text.endswith("data: [DONE]\n\n") if stream else response.json()["choices"]
        assert not any(entry.startswith("complete:") for entry in JOURNALS["slow"])
        gateway.loop.call_soon_threadsafe(gate.set)
        wait_until(lambda: "complete:slow:200" in JOURNALS["slow"], "completion hook finished")


async def _make_event() -> asyncio.Event:
    return asyncio.Event()


# --- clause 2: instances live across revisions ----------------------------------------------------


def test_an_unchanged_plugin_keeps_its_instance_and_a_changed_one_is_replaced_after_its_requests() -> None:
    with run_gateway(echo_config(plugin("p", version=1), plugin("q"), latency_ms=600)) as gateway:
        first_p, first_q = INSTANCES
        assert first_p.started and first_q.started
        gateway.apply(echo_config(plugin("p", version=1), plugin("q"), latency_ms=600, chunk_delay_ms=0))
        assert [first_p, first_q] == INSTANCES  # same settings: same instances, nothing restarted
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                httpx.post,
                gateway.url + "/v1/chat/completions",
                json={"model": "echo/x", "messages": HELLO},
                timeout=10,
            )
            wait_until(lambda: "pre:p" in JOURNALS["p"], "request in flight on the old revision")
            gateway.apply(echo_config(plugin("p", version=2), plugin("q"), latency_ms=600))
            new_p = INSTANCES[-1]
            assert new_p is not first_p and new_p.started  # started before the revision serves
            assert not first_p.stopped  # its request is still running
            assert slow.result().status_code == 200
        wait_until(lambda: first_p.stopped, "old instance stopped once its request ended")
        assert not first_q.stopped and not new_p.stopped


def test_a_plugin_that_fails_to_start_rejects_the_revision() -> None:
    with run_gateway(echo_config(plugin("ok"))) as gateway:
        before = gateway.app.gateway.current
        with pytest.raises(ConfigError, match=r"plugins\[bad\]: failed to start: cannot connect"):
            gateway.apply(echo_config(plugin("ok"), plugin("bad", fail_start=True)))
        assert gateway.app.gateway.current is before


# --- clause 3: typed settings ----------------------------------------------------------------------


def test_a_settings_typo_is_a_config_error_naming_the_field() -> None:
    with run_gateway(echo_config()) as gateway:
        with pytest.raises(
            ConfigError, match=r"plugins\[p\]\.settings\.jurnal: Extra inputs are not permitted"
        ):
            gateway.apply(echo_config({"name": "p", "type": "contract", "settings": {"jurnal": "x"}}))
        with pytest.raises(
            ConfigError, match=r"plugins\[t\]\.settings\.stream_timings: Input should be a valid"
        ):
            gateway.apply(
                echo_config({"name": "t", "type": "telemetry", "settings": {"stream_timings": "often"}})
            )
    assert registry.settings_error("telemetry", {"stream_timngs": True}) == (
        "settings.stream_timngs: Extra inputs are not permitted"
    )
    assert registry.settings_error("telemetry", {}) is None


# --- clause 9: failing open and closed ---------------------------------------------------------------


async def test_fail_open_plugin_bugs_are_skipped_and_counted() -> None:
    buggy, ok = _instances("buggy", "ok")
    buggy.config = buggy.Settings(journal="shared", pre="raise", post="raise", chunk="raise")
    pipeline = Pipeline([buggy, ok])
    request = _request()
    reached, short = await pipeline.pre(request)
    assert (reached, short) == (2, None)
    chunk = {"choices": [{"index": 0, "delta": {"content": "x"}}]}
    assert pipeline.chunk(request, chunk) == chunk  # type: ignore[arg-type]
    outcome = await pipeline.post(request, Outcome(204), reached)
    assert outcome.status == 204
    for hook in ("pre_request", "post_response", "on_chunk"):
        assert PLUGIN_ERRORS.labels("buggy", hook)._value.get() >= 1


def test_a_fail_closed_plugin_bug_refuses_the_request() -> None:
    config = echo_config(plugin("guard", type_="contract-closed", pre="raise"))
    with run_gateway(config) as gateway:
        response = httpx.post(
            gateway.url + "/v1/chat/completions", json={"model": "echo/x", "messages": HELLO}
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "plugin_unavailable"


def test_stream_timings_reach_the_telemetry_histograms() -> None:
    config = {
        "providers": [
            {"name": "echo", "type": "echo", "options": {"chunk_delay_ms": 1}, "models": ["ttft-probe"]}
        ],
        "plugins": [{"name": "telemetry", "type": "telemetry"}],
    }
    body = {"model": "echo/ttft-probe", "stream": True, "messages": [{"role": "user", "content": "a b c d"}]}
    with run_gateway(config) as gateway, httpx.Client(base_url=gateway.url) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.read().endswith(b"data: [DONE]\n\n")
        labels = 'model="ttft-probe",provider="echo"'

        def counted() -> bool:
            return f"asbru_time_to_first_token_seconds_count{{{labels}}} 1.0" in client.get("/metrics").text

        wait_until(counted, "stream timings recorded")
        metrics = client.get("/metrics").text
    assert f"asbru_inter_token_latency_seconds_count{{{labels}}} 1.0" in metrics


def test_a_replayed_stream_is_rendered_in_the_callers_dialect() -> None:
    """A cache hit on a stream request replays as a stream in the caller's own dialect."""
    import anthropic  # noqa: PLC0415 - only this test speaks Anthropic

    with (
        run_gateway(echo_config(plugin("cache", pre="replay"))) as gateway,
        anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key="x", max_retries=0) as client,
        client.messages.stream(
            model="echo/x", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "cached answer"
    assert final.stop_reason == "end_turn"
