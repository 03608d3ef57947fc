"""A slow client is not an idle upstream: the stream idle limit counts only waits for upstream bytes.

``stream_idle_timeout_s`` ends a stream whose upstream goes quiet (the fault matrix's
``stall-midstream``). A client that reads slowly holds the gateway in its writes instead, while the
upstream has more to send the whole time; cutting that stream with a timeout error would blame the
upstream for the client's pace. Here the upstream floods 8 MiB (more than the loopback buffers
between the gateway and a client with a 4 KiB receive buffer hold), the client stops reading for
three idle limits, then reads on: the stream must end normally.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.conftest import TEST_KEYS
from tests.fakes import faults
from tests.fakes.server import Recorder, serve_in_thread
from tests.gateway_server import RunningGateway, run_gateway

IDLE_S = 0.5
PAUSE_S = 3 * IDLE_S
"""How long the client reads nothing: the slow client's behaviour under test, not a synchronisation."""


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_KEYS.items():
            patch.setenv(name, value)
        with serve_in_thread(faults.make_app(Recorder())) as url:
            network = {"first_token_timeout_s": 5.0, "stream_idle_timeout_s": IDLE_S}
            with run_gateway({"providers": [faults.provider_config(url, **network)]}) as running:
                yield running


def test_a_client_that_pauses_longer_than_the_idle_limit_gets_the_whole_stream(
    gateway: RunningGateway,
) -> None:
    body = orjson.dumps(
        {"model": "faulty/flood", "messages": [{"role": "user", "content": "go"}], "stream": True}
    )
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        client.settimeout(30)
        client.connect((host, int(port)))
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        received = bytearray(client.recv(4096))
        assert received.startswith(b"HTTP/1.1 200"), bytes(received[:200])
        time.sleep(PAUSE_S)
        while not received.endswith(b"0\r\n\r\n"):  # the last chunk of the chunked response
            block = client.recv(1 << 16)
            assert block, "the gateway closed the connection before the end of the stream"
            received += block
    assert received.count(b'"content":"' + b"x" * 8000) == faults.FLOOD_EVENTS
    assert b"data: [DONE]" in received
    assert b'"error"' not in received, "a slow client's stream was cut as if the upstream were idle"
