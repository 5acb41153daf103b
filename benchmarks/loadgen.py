"""A closed-loop HTTP/1.1 load generator: N keep-alive connections, one request in flight on each.

One thread drives every connection through epoll, so the generator costs
~10 us of one core per request whatever the connection count, and every server under test is
measured with the same client. Latency is from the request's send to its response's last byte.

    result = run_load("127.0.0.1", 8080, "/invocations", bodies, "text/csv", connections=8, seconds=3)
    result.rate, result.p50_ms, result.p99_ms, result.failed
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadResult:
    requests: int
    failed: int  # non-2xx answers and connections broken in the middle of an answer
    seconds: float
    latencies_ns: np.ndarray
    statuses: dict[int, int]
    reconnects: int = 0  # keep-alive connections the server closed before answering: reopened, resent

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ns, 50)) / 1e6

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ns, 99)) / 1e6


def build_requests(host: str, port: int, path: str, bodies: list[bytes], content_type: str,
                   accept: str | None = None) -> list[bytes]:
    """Raw request bytes, one per body (headers a boto3 client would send, minus signing)."""
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
    if accept:
        head += f"Accept: {accept}\r\n"
    return [(head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]


class _Conn:
    __slots__ = ("buffer", "index", "need", "request", "sock", "started")

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock, self.buffer, self.started, self.index, self.need = sock, bytearray(), 0, index, -1
        self.request = b""


def _response_size(buffer: bytearray) -> tuple[int, int]:
    """(total bytes of the response, status) once the head is in the buffer, else (-1, 0)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return -1, 0
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    at = head.find(b"content-length:")
    length = int(head[at + 15: head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
    return end + 4 + length, status


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run_load(host: str, port: int, requests: list[bytes], connections: int, seconds: float,
             max_requests: int | None = None) -> LoadResult:
    """Drive ``connections`` keep-alive connections for ``seconds`` (or ``max_requests``).

    A server may close an idle keep-alive connection (a worker retiring) just as a request is sent on
    it; as HTTP clients do (botocore among them), the request is then sent again on a new connection
    and counted in ``reconnects``, not as a failure. A connection lost in the middle of an answer is
    a failure."""
    poller = select.epoll()
    conns: dict[int, _Conn] = {}
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    failed = reconnects = sent = 0
    limit = max_requests or 1 << 62
    n_requests = len(requests)

    def send(conn: _Conn, request: bytes) -> None:
        nonlocal reconnects
        conn.request = request
        for _ in range(3):
            try:
                conn.sock.sendall(request)
                return
            except (BrokenPipeError, ConnectionResetError):
                reopen(conn)
                reconnects += 1
        raise ConnectionError("the server keeps closing new connections")

    def reopen(conn: _Conn) -> None:
        poller.unregister(conn.sock.fileno())
        del conns[conn.sock.fileno()]
        conn.sock.close()
        conn.sock, conn.buffer, conn.need = _connect(host, port), bytearray(), -1
        conns[conn.sock.fileno()] = conn
        poller.register(conn.sock.fileno(), select.EPOLLIN)

    for k in range(connections):
        sock = _connect(host, port)
        conns[sock.fileno()] = _Conn(sock, k)
        poller.register(sock.fileno(), select.EPOLLIN)
    start = time.perf_counter()
    deadline = start + seconds
    for conn in list(conns.values()):
        conn.started = time.perf_counter_ns()
        send(conn, requests[sent % n_requests])
        sent += 1
    active = len(conns)
    while active:
        for fd, _ in poller.poll(1.0):
            conn = conns.get(fd)
            if conn is None:  # reopened earlier in this batch of events
                continue
            try:
                # non-blocking: an event of a socket closed in this batch may name its successor's fd
                chunk = conn.sock.recv(262144, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:  # the server closed the connection
                if conn.buffer:
                    failed += 1  # in the middle of an answer
                else:
                    reconnects += 1
                reopen(conn)
                send(conn, conn.request)
                continue
            conn.buffer += chunk
            if conn.need < 0:
                conn.need, status = _response_size(conn.buffer)
                if conn.need < 0:
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 300:
                    failed += 1
            if len(conn.buffer) < conn.need:
                continue
            now = time.perf_counter_ns()
            latencies.append(now - conn.started)
            del conn.buffer[:conn.need]
            conn.need = -1
            if sent >= limit or time.perf_counter() >= deadline:
                poller.unregister(fd)
                active -= 1
                continue
            conn.started = now
            send(conn, requests[sent % n_requests])
            sent += 1
        if time.perf_counter() > deadline + 30:
            break  # a server that stopped answering: count what is outstanding as failed
    elapsed = time.perf_counter() - start
    failed += active
    for conn in conns.values():
        conn.sock.close()
    poller.close()
    return LoadResult(len(latencies), failed, elapsed, np.asarray(latencies, dtype=np.int64), statuses, reconnects)
