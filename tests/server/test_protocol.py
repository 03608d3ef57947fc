"""The client connection's limits (issue 9, defects 6 and 11), over raw sockets.

Before: an 80 MB header took 13.9 s and stalled other clients; slowloris connections stayed open
forever; idle keep-alive connections after an early answer (404, 413 before the body was read)
were never closed; malformed HTTP got uvicorn's plain-text 400.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from asbru_gateway.server.limits import ServerLimits
from tests.gateway_server import RunningGateway, run_gateway

LIMITS = ServerLimits(max_header_bytes=16 * 1024, header_timeout_s=1.0, body_timeout_s=1.0, keep_alive_s=1.0)
CONFIG = {"providers": [{"name": "echo", "type": "echo"}], "server": {"max_body_bytes": 64 * 1024}}


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    with run_gateway(CONFIG, limits=LIMITS) as running:
        yield running


def _connect(gateway: RunningGateway) -> socket.socket:
    port = int(gateway.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket timeout bounds it)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _status_and_json(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def test_a_huge_header_is_refused_at_the_limit_without_reading_it_all(gateway: RunningGateway) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-big: ")
        sent = 0
        try:
            for _ in range(80 * 16):  # up to 80 MB in 64 KB pieces; the server hangs up long before
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # the server closed the connection: that is the point
        status, body = _status_and_json(_read_until_closed(sock))
    assert status == 431
    assert body["error"]["code"] == "request_header_too_large"  # type: ignore[index]
    assert sent < 10 * 1024 * 1024


def test_a_slowloris_client_is_dropped_with_408(gateway: RunningGateway) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        for piece in (b"host: x\r\n", b"x-a: 1\r\n", b"x-b: 2\r\n", b"x-c: 3\r\n"):
            try:
                sock.sendall(piece)  # trickling keeps the connection busy, never complete
            except OSError:
                break
            sock.settimeout(0.4)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the server already answered
            except TimeoutError:
                continue
        sock.settimeout(10)
        status, body = _status_and_json(_read_until_closed(sock))
    assert status == 408 and body["error"]["code"] == "request_timeout"  # type: ignore[index]
    assert time.monotonic() - started < 8


def test_a_connection_that_sends_nothing_is_closed(gateway: RunningGateway) -> None:
    with _connect(gateway) as sock:
        raw = _read_until_closed(sock)  # blocks until the server closes (socket timeout: 10 s)
    assert raw == b"" or raw.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize(
    ("path", "status"), [("/no/such/path", 404), ("/v1/chat/completions", 413)], ids=["404", "413"]
)
def test_an_early_answer_never_leaves_the_connection_open(
    gateway: RunningGateway, path: str, status: int
) -> None:
    body = b"x" * (200 * 1024)  # more than the body limit, and more than a socket buffer
    with _connect(gateway) as sock:
        request = (
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(request)
        with contextlib.suppress(OSError):  # the server may close before reading it all: also fine
            sock.sendall(body)
        raw = _read_until_closed(sock)  # must end: the server closes or drains and times out
    assert raw.startswith(f"HTTP/1.1 {status}".encode())


def test_malformed_http_gets_a_400_in_the_openai_shape(gateway: RunningGateway) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        status, body = _status_and_json(_read_until_closed(sock))
    assert status == 400
    assert set(body["error"]) == {"message", "type", "code", "param"}  # type: ignore[arg-type]


def test_other_clients_are_served_while_a_huge_header_arrives(gateway: RunningGateway) -> None:
    with _connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nx-big: " + b"a" * 8192)  # under the limit, unfinished
        response = httpx.get(gateway.url + "/healthz", timeout=5)
        assert response.status_code == 200


def test_answers_do_not_say_what_server_software_runs_the_gateway(gateway: RunningGateway) -> None:
    answer = httpx.get(gateway.url + "/health", timeout=10)
    assert answer.status_code == 200
    assert "server" not in answer.headers and "date" in answer.headers
