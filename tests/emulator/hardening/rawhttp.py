"""Helpers for the hostile-request tests: raw HTTP over a socket, so nothing normalizes the request."""

from __future__ import annotations

import socket
import time


def raw_request(url: str, data: bytes, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """Send ``data`` as is to the server at ``url``; (HTTP status or None when it answered nothing,
    the whole answer) once the server closes the connection or ``timeout`` passes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1."):
        return None, answer
    return int(answer.split(b" ", 2)[1]), answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False
