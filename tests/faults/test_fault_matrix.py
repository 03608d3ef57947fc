"""Every upstream fault x {JSON, stream} x {with a fallback, without}: a well-formed answer, in time.

The fault-injecting upstream (``tests/fakes/faults.py``) fails in each way an upstream can: error
statuses, a dropped connection, a stall, slowness, a body that is not JSON, an HTML page, a stream
whose events are garbage, a stream that dies, stalls or errors mid-way, errors that quote the API
key.
What a client relies on, in every cell:

- the answer is well formed: an OpenAI error body with a fitting status, or a 200 (JSON, or a
  stream that ends with ``[DONE]`` or with an error event), never a raw relay of garbage;
- a failure before anything reached the client falls back when the request has somewhere to go;
- it arrives in bounded time (the client's timeout is the bound; the gateway's are far below it);
- the upstream's API key never reaches the client;
- the fault is counted (``asbru_requests_total`` by status).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.conftest import TEST_KEYS
from tests.fakes import faults
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway

KEY = TEST_KEYS["ASBRU_TEST_OPENAI_KEY"]
HELLO = [{"role": "user", "content": "rescue me"}]


@dataclass(frozen=True)
class Fault:
    model: str
    status: int
    """What a client without a fallback gets (before any byte was sent)."""
    streams_only: bool = False
    midstream: bool = False
    """The fault strikes after the first event: a stream ends with an error event, no fallback."""


FAULTS = [
    Fault("status-500", 500),
    Fault("status-503", 503),
    Fault("status-429-ra-30", 429),
    Fault("status-400", 400),
    Fault("reset", 502),
    Fault("stall", 504),
    Fault("slow-3000", 504),
    Fault("bad-json", 502),
    Fault("html", 502),
    Fault("key-error", 401),
    Fault("bad-sse", 502, streams_only=True),
    Fault("key-error-first", 502, streams_only=True),
    Fault("die-midstream", 200, streams_only=True, midstream=True),
    Fault("stall-midstream", 200, streams_only=True, midstream=True),
    Fault("bad-sse-midstream", 200, streams_only=True, midstream=True),
    Fault("key-error-midstream", 200, streams_only=True, midstream=True),
]


@dataclass
class Setup:
    gateway: RunningGateway
    recorder: Recorder


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    recorder = Recorder()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with serve_in_thread(faults.make_app(recorder)) as url:
            network = {"request_timeout_s": 1.0, "first_token_timeout_s": 0.5, "stream_idle_timeout_s": 0.5}
            config = {
                "server": {"request_deadline_s": 5},
                "providers": [faults.provider_config(url, **network), {"name": "echo", "type": "echo"}],
                "plugins": [{"name": "telemetry", "type": "telemetry"}],
            }
            with run_gateway(config) as gateway:
                yield Setup(gateway, recorder)


def _metric(gateway: RunningGateway, status: int) -> float:
    text = httpx.get(gateway.url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("asbru_requests_total{") and f'status="{status}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _cases() -> list[tuple[Fault, bool, bool]]:
    return [
        (fault, stream, fallback)
        for fault in FAULTS
        for stream in (False, True)
        for fallback in (False, True)
        if stream or not fault.streams_only
    ]


@pytest.mark.parametrize(
    ("fault", "stream", "fallback"),
    _cases(),
    ids=lambda value: value.model if isinstance(value, Fault) else None,
)
def test_every_fault_gets_a_well_formed_answer_in_bounded_time(
    setup: Setup, fault: Fault, stream: bool, fallback: bool
) -> None:
    body: dict[str, object] = {"model": f"faulty/{fault.model}", "messages": HELLO, "stream": stream}
    if fallback:
        body["fallbacks"] = ["echo/rescuer"]
    before = _metric(setup.gateway, 200 if fallback and not fault.midstream else fault.status)
    attempts_before = sum(1 for r in setup.recorder.requests if (r.json or {}).get("model") == fault.model)
    with httpx.Client(base_url=setup.gateway.url, timeout=15) as client:
        response = client.post("/v1/chat/completions", json=body)
    raw = response.content
    assert KEY.encode() not in raw, "the upstream's key reached the client"
    attempts = sum(1 for r in setup.recorder.requests if (r.json or {}).get("model") == fault.model)
    assert attempts - attempts_before == 1, "one attempt on the faulty target, no retry in place"
    if fault.midstream:
        _assert_stream_ends_with_error(response)
    elif fallback:
        assert response.status_code == 200, response.text
        assert response.headers["x-asbru-provider"] == "echo"
        assert _text(response, stream=stream) == "rescue me"
    else:
        assert response.status_code == fault.status, response.text
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code", "param"} and error["message"]
    status = 200 if fallback and not fault.midstream else fault.status
    assert _metric(setup.gateway, status) - before >= 1


def _text(response: httpx.Response, *, stream: bool) -> str:
    if not stream:
        return str(response.json()["choices"][0]["message"]["content"])
    events = [block for block in response.content.split(b"\n\n") if block]
    assert events[-1] == b"data: [DONE]"
    chunks = [orjson.loads(event.removeprefix(b"data: ")) for event in events[:-1]]
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])


def _assert_stream_ends_with_error(response: httpx.Response) -> None:
    assert response.status_code == 200
    events = [block for block in response.content.split(b"\n\n") if block]
    payloads = [orjson.loads(event.removeprefix(b"data: ")) for event in events]  # every event parses
    assert payloads[0]["choices"][0]["delta"]["content"] == faults.TEXT_PIECES[0]
    assert set(payloads[-1]) == {"error"}, "a broken stream ends with an error event, never silently"
    assert all("error" not in payload for payload in payloads[:-1])
