"""The console's server without a browser: what it refuses (a foreign Host, a change without the
page's token, from another Origin, or not as JSON), the page it serves (the token embedded, a strict
Content-Security-Policy), its static files (no way out of static/), and an API that is not served
yet answered with what to do. The pages themselves are tested in a real browser (tests/e2e/test_console.py)."""

from __future__ import annotations

import http.client
import json

import pytest

from emulator.console.guard import TOKEN_HEADER
from emulator.console.server import ConsoleServer


@pytest.fixture
def console():
    server = ConsoleServer({}, "us-east-1").start()  # nothing deployed: no API URLs
    yield server
    server.stop()


def request(server: ConsoleServer, method: str, path: str, body: bytes | None = None, **headers: str):
    connection = http.client.HTTPConnection("127.0.0.1", server.httpd.server_address[1], timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        connection.putheader("Host", headers.pop("Host", f"127.0.0.1:{server.httpd.server_address[1]}"))
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def token_of(console: ConsoleServer) -> str:
    _, _, page = request(console, "GET", "/")
    return page.decode().split('name="console-token" content="', 1)[1].split('"', 1)[0]


def test_it_listens_on_loopback_only(console):
    assert console.httpd.server_address[0] == "127.0.0.1"
    assert console.url.startswith("http://127.0.0.1:")


def test_the_page_embeds_the_token_under_a_strict_policy(console):
    status, headers, page = request(console, "GET", "/")
    assert status == 200
    assert token_of(console) == console.guard.token and len(console.guard.token) >= 40
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert b"{{TOKEN}}" not in page


def test_a_foreign_host_is_refused_even_for_reading(console):
    status, _, body = request(console, "GET", "/", Host="evil.example:80")
    assert status == 403 and "Host" in json.loads(body)["message"]


@pytest.mark.parametrize("headers, why", [
    ({"Content_Type": "application/json"}, TOKEN_HEADER),
    ({"Content_Type": "application/json", TOKEN_HEADER: "not-the-token"}, TOKEN_HEADER),
    ({"Content_Type": "text/plain", TOKEN_HEADER: "<token>"}, "Content-Type"),
    ({"Content_Type": "application/x-www-form-urlencoded", TOKEN_HEADER: "<token>"}, "Content-Type"),
    ({"Content_Type": "application/json", TOKEN_HEADER: "<token>", "Origin": "http://evil.example"}, "Origin"),
    ({"Content_Type": "application/json", TOKEN_HEADER: "<token>", "Sec_Fetch_Site": "cross-site"}, "cross-site"),
])
def test_a_change_without_the_token_from_its_own_page_is_refused(console, headers, why):
    token = token_of(console)
    headers = {k: (token if v == "<token>" else v) for k, v in headers.items()}
    body = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:m", "input": "{}"}).encode()
    status, _, answer = request(console, "POST", "/api/start", body, **headers)
    assert status == 403
    assert why in json.loads(answer)["message"]


def test_with_the_token_a_change_reaches_the_api_which_is_not_served_yet(console):
    body = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:m", "input": "{}"}).encode()
    status, _, answer = request(console, "POST", "/api/start", body, **{
        "Content_Type": "application/json", TOKEN_HEADER: token_of(console),
        "Origin": f"http://127.0.0.1:{console.httpd.server_address[1]}", "Sec_Fetch_Site": "same-origin"})
    assert status == 503
    assert "python -m emulator deploy" in json.loads(answer)["message"]


def test_a_bad_input_is_named_before_any_call(console):
    body = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:m", "input": "{nope"}).encode()
    status, _, answer = request(console, "POST", "/api/start", body,
                                **{"Content_Type": "application/json", TOKEN_HEADER: token_of(console)})
    assert status == 400 and "not JSON" in json.loads(answer)["message"]


def test_static_files_are_served_and_nothing_outside_them(console):
    status, headers, script = request(console, "GET", "/static/vendor/dagre/dagre.min.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"dagre" in script
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/../../cli/serve.py", "/static/nothing.js"):
        assert request(console, "GET", path)[0] == 404, path
