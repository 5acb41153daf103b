"""The InvokeEndpoint server refuses malformed framing with 400 and SageMaker's error shape, and
ends connections of clients that stall (header timeout) or idle (idle timeout)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from rawhttp import raw_request

from emulator.services.sagemaker.invoke_server import MAX_PAYLOAD_BYTES, RuntimeServer
from emulator.storage.layout import Layout

INVOKE = "POST /endpoints/abalone/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"


@pytest.fixture
def server(tmp_path):
    srv = RuntimeServer(Layout.at(tmp_path / "state"))
    srv.httpd.header_timeout, srv.httpd.idle_timeout, srv.httpd.body_timeout = 0.6, 0.8, 0.6
    srv.start()
    yield srv
    srv.stop()


def error_of(answer: bytes) -> tuple[str, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    kind = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                if line.lower().startswith(b"x-amzn-errortype"))
    return kind, json.loads(body)


@pytest.mark.parametrize("header", ["Content-Length: abc", "Content-Length: -1", "Content-Length: 1e3",
                                    f"Content-Length: {MAX_PAYLOAD_BYTES + 1}"])
def test_a_bad_content_length_is_400_at_once(server, header):
    started = time.monotonic()
    status, answer = raw_request(server.base_url, f"{INVOKE}{header}\r\n\r\n1,2,3".encode(), timeout=5)
    assert status == 400, answer
    kind, body = error_of(answer)
    assert kind == "ValidationError" and "Content-Length" in body["Message"] or "payload" in body["Message"]
    assert time.monotonic() - started < 2  # answered, not left waiting for a body that never comes


@pytest.mark.parametrize("chunks", [b"zz\r\n1,2\r\n0\r\n\r\n", b"-5\r\n1,2\r\n0\r\n\r\n",
                                    f"{MAX_PAYLOAD_BYTES + 1:x}\r\n".encode()])
def test_a_bad_chunk_size_is_400(server, chunks):
    status, answer = raw_request(server.base_url, f"{INVOKE}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks)
    assert status == 400, answer
    assert error_of(answer)[0] == "ValidationError"


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_stalled_and_idle_clients_are_disconnected_and_do_not_block_others(server):
    host, port = server.base_url.removeprefix("http://").split(":")
    stalled = []
    for _ in range(40):  # half a request line each, never finished
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /endpoints/abalone/invo")
        stalled.append(sock)
    idle = socket.create_connection((host, int(port)))  # connects, says nothing
    body_stall = socket.create_connection((host, int(port)))
    body_stall.sendall(f"{INVOKE}Content-Length: 100\r\n\r\n1,2".encode())  # promises 100 bytes, sends 3
    status, _ = raw_request(server.base_url, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200  # the server answers others meanwhile
    assert all(closed_within(sock, 3) for sock in stalled)
    assert closed_within(idle, 3)
    assert closed_within(body_stall, 3)
    for sock in [*stalled, idle, body_stall]:
        sock.close()


def test_a_keep_alive_connection_serves_requests_until_it_idles(server):
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        for _ in range(3):
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # under the idle timeout: the connection stays
        assert closed_within(sock, 3)
