"""The ASGI application behind /ping and /invocations, and InvokeEndpoint's per-endpoint route.

    app = InvocationsApp(StaticResolver(predictor))     # a container: GET /ping, POST /invocations
    app = InvocationsApp(my_endpoint_resolver)          # + POST /endpoints/<name>/invocations

No web framework: a request is routed on its path and handed to the resolver's predictor, which runs
on the event loop itself. Scoring is CPU work of well under a millisecond for real-time requests;
a thread-pool hop would cost about as much as the scoring, and parallelism comes from the worker
processes (workers.py), one per core. A 1,000-row request holds its worker's loop for its few
milliseconds, as a gevent worker of SageMaker's own containers does.

A resolver decides which predictor answers (and may raise HTTPError to answer itself); a predictor
in flight stays alive while the resolver moves on to a new model, so an endpoint update never fails
a request.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from containers.protocol import Predictor, Response

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = int(os.environ.get("MAX_CONTENT_LENGTH", str(6 * 1024 * 1024)))  # InvokeEndpoint's limit
_ENDPOINT = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations/?$")


class HTTPError(Exception):
    """An answer the resolver gives instead of a predictor's (unknown endpoint, not in service...)."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(body.decode("utf-8", "replace"))
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers or {}


@dataclass
class Route:
    """Who answers one request: the predictor, and headers to add to a successful answer."""

    predictor: Predictor
    headers: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Chooses the predictor per request. ``endpoint`` is None on a container's own /invocations."""

    def resolve(self, endpoint: str | None, headers: dict[str, str]) -> Route:
        raise NotImplementedError

    def model_error(self, endpoint: str | None, route: Route, response: Response) -> HTTPError | None:
        """How a predictor's error answer reaches the caller: None sends it as it is (a container);
        InvokeEndpoint wraps it in a ModelError (424) naming the container."""
        return None

    def ready(self) -> bool:
        """GET /ping: 200 when True."""
        return True


class StaticResolver(Resolver):
    """One predictor for every request, loaded by ``load`` on the worker's first use (or at start)."""

    def __init__(self, load: Callable[[], Predictor]) -> None:
        self._load = load
        self._route: Route | None = None

    def route(self) -> Route:
        if self._route is None:
            self._route = Route(self._load())
        return self._route

    def resolve(self, endpoint: str | None, headers: dict[str, str]) -> Route:
        if endpoint is not None:
            raise HTTPError(404, json.dumps({"Message": f"No endpoint {endpoint} here; POST /invocations."}).encode())
        return self.route()

    def ready(self) -> bool:
        self.route()
        return True


def _headers(scope: dict) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}


class InvocationsApp:
    """ASGI 3 application (see the module docstring)."""

    def __init__(self, resolver: Resolver, max_payload: int = MAX_PAYLOAD_BYTES) -> None:
        self.resolver = resolver
        self.max_payload = max_payload

    async def __call__(self, scope: dict, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path.rstrip("/") == "/ping":
            ok = self._ready()
            await _send(send, 200 if ok else 503, b"", "text/plain")
            return
        if method != "POST":
            await _send(send, 405 if path.endswith("/invocations") else 404, b"", "text/plain")
            return
        if path == "/invocations":
            endpoint = None
        else:
            match = _ENDPOINT.match(path)
            if match is None:
                await _send(send, 404, json.dumps({"Message": f"No operation at POST {path}"}).encode(),
                            "application/json", {"x-amzn-ErrorType": "UnknownOperationException"})
                return
            endpoint = unquote(match.group("name"))
        body = await self._body(receive)
        headers = _headers(scope)
        try:
            if body is None:
                raise HTTPError(413, json.dumps({"Message": f"Request payload exceeds {self.max_payload} bytes."}).encode(),
                                headers={"x-amzn-ErrorType": "ValidationError"})
            try:
                route = self.resolver.resolve(endpoint, headers)
            except HTTPError:
                raise
            except Exception as err:  # e.g. a model that fails to load: a 500 that says why
                log.exception("resolving %s failed", endpoint or "/invocations")
                raise HTTPError(500, f"{type(err).__name__}: {err}".encode(), "text/plain") from err
            try:
                response = route.predictor.invoke(body, headers.get("content-type"), headers.get("accept"))
            except Exception as err:  # a twin's bug: the caller gets a 500 that says so, the worker lives
                log.exception("predictor raised")
                response = Response(500, f"{type(err).__name__}: {err}".encode(), "text/plain")
            if response.status >= 400:
                wrapped = self.resolver.model_error(endpoint, route, response)
                if wrapped is not None:
                    raise wrapped
            extra = route.headers
        except HTTPError as err:
            await _send(send, err.status, err.body, err.content_type, err.headers)
            return
        await _send(send, response.status, response.body, response.content_type, extra)

    def _ready(self) -> bool:
        try:
            return self.resolver.ready()
        except Exception:  # a model that does not load is not healthy; say so in the log
            log.exception("health check failed")
            return False

    async def _body(self, receive) -> bytes | None:
        """The request body, or None past the payload limit (read to the end so keep-alive works)."""
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body"):
            return body if len(body) <= self.max_payload else None
        chunks, size = [body], len(body)
        while message.get("more_body"):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_payload:
                chunks.append(chunk)
        return b"".join(chunks) if size <= self.max_payload else None

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.resolver.ready()  # load the model before the first request arrives
                except Exception as err:  # noqa: BLE001 - any failure to load fails the start, with its reason
                    await send({"type": "lifespan.startup.failed", "message": f"{type(err).__name__}: {err}"})
                    return
                # the loaded models are long-lived: keep them out of every later collection's scan,
                # which otherwise lands in some request's latency
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend((key.encode("latin-1"), value.encode("latin-1")) for key, value in extra.items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
