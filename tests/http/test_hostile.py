"""Hostile HTTP against the HTTP face: every request below gets a clear 4xx answer (never
a 500), writes nothing, leaks no secret into answers or logs, and the server keeps
serving. Raw sockets send what no well-behaved client would."""

from __future__ import annotations

import base64
import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.harness import PASSWORD, Http
from tests.http._support import FORM, Captured, basic

SECRET_MARK = "s3cr3t-that-must-not-leak"


def _raw(http: Http, request: bytes, *, timeout: float = 10) -> bytes:
    """Send ``request`` on a fresh connection; everything the server answers before
    closing or going idle for a moment."""
    port = int(http.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [*headers, "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(autouse=True)
def _still_serving(http: Http, captured: Captured) -> Iterator[None]:
    """After each attack: the server answers normally, logged nothing secret, wrote
    nothing (no revocation, no new refresh token)."""
    store = http.service.store
    revocations = len(store.revocations_after(0))
    yield
    assert http.client_token()["token_type"] == "Bearer"
    for secret in (http.client.client_secret, PASSWORD, SECRET_MARK):
        assert secret not in captured.text
    assert '"status":500' not in captured.text
    assert len(store.revocations_after(0)) == revocations


def _refused(answer: bytes, status: int, error: str | None = None) -> None:
    assert _status(answer) == status, answer[:300]
    assert SECRET_MARK.encode() not in answer
    if error is not None:
        assert f'"error":"{error}"'.encode() in answer


def test_malformed_form_body(http: Http) -> None:
    for body in (b"grant_type", b"a=%zz&grant_type=client_credentials", b"=&&=", b"\xff\xfe=1"):
        _refused(_raw(http, _post("/token", body, f"Content-Type: {FORM}")), 400, "invalid_request")


def test_form_not_utf8_once_decoded(http: Http) -> None:
    body = b"grant_type=password&username=%ff%fe&password=x"
    _refused(_raw(http, _post("/token", body, f"Content-Type: {FORM}")), 400, "invalid_request")


def test_oversized_body(http: Http) -> None:
    body = b"grant_type=client_credentials&scope=" + b"a" * 100_000
    _refused(_raw(http, _post("/token", body, f"Content-Type: {FORM}")), 413, "invalid_request")


def test_wrong_content_type(http: Http) -> None:
    for content_type in ("application/json", "text/plain", f"{FORM}; charset=latin-1"):
        answer = http.post(
            "/token",
            content=b'{"grant_type":"client_credentials"}',
            headers={"Content-Type": content_type},
            auth=(http.client.client_id, http.client.client_secret),
        )
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    missing = _raw(http, _post("/token", b"grant_type=client_credentials"))
    _refused(missing, 400, "invalid_request")


def _invalid_form(http: Http, body: bytes) -> dict[str, str]:
    """POST ``body`` to /token with the client's Basic credentials; expect invalid_request."""
    auth = (http.client.client_id, http.client.client_secret)
    answer = http.post("/token", content=body, headers={"Content-Type": FORM}, auth=auth)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")
    assert "x-injected" not in answer.headers
    error: dict[str, str] = answer.json()
    return error


def test_duplicate_parameters(http: Http) -> None:
    for body in (
        b"grant_type=client_credentials&grant_type=password",
        b"grant_type=client_credentials&scope=orders.read&scope=orders.write",
        b"grant_type=client_credentials&resource=a&resource=b",
    ):
        assert "repeated" in _invalid_form(http, body)["error_description"]


def test_get_on_post_endpoints(http: Http) -> None:
    for path in ("/token", "/revoke", "/introspect"):
        answer = http.get(path, params={"grant_type": "client_credentials"})
        assert (answer.status_code, answer.json()["error"]) == (405, "invalid_request")
        assert answer.headers["allow"] == "POST"
        assert answer.headers["cache-control"] == "no-store"


def test_post_on_get_endpoints_and_unknown_paths(http: Http) -> None:
    assert http.post("/jwks", {"a": "b"}).status_code == 405
    unknown = http.get("/admin")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(b"svc-a" + SECRET_MARK.encode()).decode(),  # no colon
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"svc-a:\xff\xfe" + SECRET_MARK.encode()).decode(),
        "Basic " + base64.b64encode(b":" + SECRET_MARK.encode()).decode(),  # empty id
        "Basic " + base64.b64encode(b"svc-a:" + SECRET_MARK.encode() + b"\n").decode(),
        "Bearer " + SECRET_MARK,
        "Basic",
        "Basic " + "A" * 5000,
    ],
    ids=["no-colon", "bad-base64", "not-utf8", "empty-id", "control", "bearer", "empty", "huge"],
)
def test_bad_basic_headers(http: Http, header: str) -> None:
    answer = http.post(
        "/token", {"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic ")


def test_two_authorization_headers(http: Http) -> None:
    auth = basic(http.client.client_id, http.client.client_secret)
    body = b"grant_type=client_credentials"
    request = _post(
        "/token", body, f"Content-Type: {FORM}", f"Authorization: {auth}", f"Authorization: {auth}"
    )
    _refused(_raw(http, request), 400, "invalid_request")


def test_crlf_in_parameters(http: Http) -> None:
    for body in (
        b"grant_type=client_credentials&scope=orders.read%0d%0aX-Injected:%201",
        b"grant_type=client_credentials%0a",
        b"grant_type=password&username=alice%00&password=x",
    ):
        assert "control characters" in _invalid_form(http, body)["error_description"]


def test_crlf_in_header_is_refused_by_the_parser(http: Http) -> None:
    request = _post("/token", b"grant_type=client_credentials", f"Content-Type: {FORM}\rX: 1")
    assert _status(_raw(http, request)) == 400


def test_oversized_headers(http: Http) -> None:
    many = [f"X-Filler-{i}: {'a' * 64}" for i in range(200)]
    assert _status(_raw(http, _post("/token", b"", *many))) in (400, 431)
    long_line = [f"X-Long: {'a' * 20_000}"]
    assert _status(_raw(http, _post("/token", b"", *long_line))) in (400, 431)


def test_unknown_grant_types(http: Http) -> None:
    auth = (http.client.client_id, http.client.client_secret)
    for grant in ("authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer", "x" * 500):
        answer = http.post("/token", {"grant_type": grant}, auth=auth)
        assert (answer.status_code, answer.json()["error"]) == (400, "unsupported_grant_type")
        assert grant not in answer.text


def test_both_authentication_methods_at_once(http: Http) -> None:
    answer = http.post(
        "/token",
        {
            "grant_type": "client_credentials",
            "client_id": http.client.client_id,
            "client_secret": http.client.client_secret,
        },
        auth=(http.client.client_id, http.client.client_secret),
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


def test_introspection_without_authentication(http: Http) -> None:
    token = http.client_token()["access_token"]
    answer = http.post("/introspect", {"token": token})
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    assert "active" not in answer.json()


def test_introspection_by_a_client_without_the_permission(http: Http) -> None:
    token = http.client_token()["access_token"]
    answer = http.post(
        "/introspect", {"token": token}, auth=(http.client.client_id, http.client.client_secret)
    )
    assert (answer.status_code, answer.json()["error"]) == (403, "unauthorized_client")
    assert "active" not in answer.json()


@pytest.mark.slow
def test_slow_headers_are_cut_off_and_others_are_served_meanwhile(http: Http) -> None:
    """Slowloris: connections that never finish their headers are closed once the
    header timeout passes (2 s here), while a normal client is served meanwhile."""
    port = int(http.base.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert http.client_token()["token_type"] == "Bearer"
        started = time.monotonic()
        for sock in slow:
            with contextlib.suppress(ConnectionResetError):  # closed abruptly: fine too
                assert sock.recv(65536) == b""  # closed by the server, no answer
        assert time.monotonic() - started < 9  # bounded by the header timeout, not ours
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.slow
def test_slow_body_is_answered_408(http: Http) -> None:
    port = int(http.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = _post("/token", b"", f"Content-Type: {FORM}").replace(
            b"Content-Length: 0", b"Content-Length: 100"
        )
        sock.sendall(head + b"grant_type=")
        answer = sock.recv(65536)
    _refused(answer, 408, "invalid_request")
