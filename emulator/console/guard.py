"""Who may talk to the console: a page this server served, on this machine.

Every request must name this server in its Host header (a DNS-rebound name is refused). A request
that changes something must also carry the per-run token the served page embeds (compared in
constant time), come with a JSON body (a cross-site HTML form cannot send one without a CORS
preflight this server never grants), and, when the browser says where it comes from (Origin,
Sec-Fetch-Site), come from this origin.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

TOKEN_HEADER = "X-Console-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class Refused(Exception):
    """The request is refused (HTTP 403); the message says why."""


class Guard:
    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.token = token or secrets.token_urlsafe(32)
        self.hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES}
        self.origins = {f"http://{host}" for host in self.hosts}

    def check_read(self, headers: Mapping[str, str]) -> None:
        host = headers.get("Host", "")
        if host not in self.hosts:
            raise Refused(f"Host {host!r} is not this console ({' or '.join(sorted(self.hosts))})")

    def check_change(self, headers: Mapping[str, str]) -> None:
        self.check_read(headers)
        origin = headers.get("Origin")
        if origin is not None and origin not in self.origins:
            raise Refused(f"Origin {origin!r} is not this console: only its own page may change anything")
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(f"a {site} request may not change anything here")
        kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Refused(f"Content-Type {kind or 'none'!r}: changes are JSON requests from the console's page")
        given = headers.get(TOKEN_HEADER) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Refused(f"missing or wrong {TOKEN_HEADER}: reload the console page (the token changes with each serve)")
