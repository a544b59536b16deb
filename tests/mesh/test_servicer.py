"""The Check servicer in process: the CheckResponse Envoy gets for each decision."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as pb
from google.rpc import status_pb2

from bearer_grpc import Policy
from bearer_grpc._status import to_status
from bearer_grpc.authz.servicer import AuthorizationServicer
from bearer_grpc.core.errors import TokenMissing
from bearer_grpc.testing import TestIssuer

POLICY = Policy(public=["/pub.Svc/*"], scopes={"/shop.v1.Orders/*": ["orders.read"]})
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def request(
    path: str, headers: dict[str, str], *, raw: list[tuple[str, bytes]] | None = None
) -> pb.CheckRequest:
    check = pb.CheckRequest()
    http = check.attributes.request.http
    http.path = path
    if raw is None:
        http.headers.update({":path": path, **headers})
    else:
        for key, value in raw:
            http.header_map.headers.add(key=key, raw_value=value)
    return check


def grpc_headers(token: str | None = None, **extra: str) -> dict[str, str]:
    found = {"content-type": "application/grpc", **extra}
    if token is not None:
        found["authorization"] = f"Bearer {token}"
    return found


def check(servicer: AuthorizationServicer, message: pb.CheckRequest) -> pb.CheckResponse:
    response: pb.CheckResponse = asyncio.run(servicer.Check(message, None))  # type: ignore[arg-type]
    return response


def set_headers(options: Any) -> dict[str, str]:
    for option in options:
        assert option.append_action == OVERWRITE
    return {option.header.key: option.header.value for option in options}


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
def servicer(issuer: TestIssuer) -> AuthorizationServicer:
    return AuthorizationServicer(issuer.aio_verifier(audience="test"), POLICY)


def test_an_allowed_call_sets_the_identity_and_removes_what_it_does_not_set(
    issuer: TestIssuer, servicer: AuthorizationServicer
) -> None:
    token = issuer.token(subject="svc", scopes=["orders.read"])
    spoofed = {"x-bearer-subject": "admin", "x-bearer-role": "root"}
    response = check(servicer, request("/shop.v1.Orders/Get", grpc_headers(token, **spoofed)))
    assert response.status.code == 0
    assert response.WhichOneof("http_response") == "ok_response"
    headers = set_headers(response.ok_response.headers)
    assert headers["x-bearer-subject"] == "svc" and headers["x-bearer-scopes"] == "orders.read"
    assert list(response.ok_response.headers_to_remove) == ["x-bearer-role"]
    assert token not in str(response)


def test_answers_kept_for_reuse_never_mix_callers(
    issuer: TestIssuer, servicer: AuthorizationServicer
) -> None:
    first, second = (issuer.token(subject=name, scopes=["orders.read"]) for name in ("one", "two"))
    for _ in range(3):
        for name, token in (("one", first), ("two", second)):
            response = check(servicer, request("/shop.v1.Orders/Get", grpc_headers(token)))
            assert set_headers(response.ok_response.headers)["x-bearer-subject"] == name


def test_a_refused_grpc_call_carries_the_interceptors_status(
    servicer: AuthorizationServicer,
) -> None:
    response = check(servicer, request("/shop.v1.Orders/Get", grpc_headers()))
    assert response.status.code == 16
    denied = response.denied_response
    assert denied.status.code == 401
    assert denied.body == "missing bearer token"
    headers = set_headers(denied.headers)
    assert headers["grpc-status"] == "16"
    assert headers["grpc-message"] == "missing bearer token"
    assert headers["www-authenticate"] == "Bearer"
    expected = dict(to_status(TokenMissing()).trailing_metadata)["grpc-status-details-bin"]
    details = base64.b64decode(headers["grpc-status-details-bin"])
    assert status_pb2.Status.FromString(details) == status_pb2.Status.FromString(expected)


def test_a_refused_http_request_gets_401_or_403_without_grpc_headers(
    issuer: TestIssuer, servicer: AuthorizationServicer
) -> None:
    response = check(servicer, request("/shop.v1.Orders/Get", {"accept": "*/*"}))
    assert response.denied_response.status.code == 401
    assert set(set_headers(response.denied_response.headers)) == {
        "www-authenticate",
        "content-type",
    }
    token = issuer.token(scopes=["other"])
    scoped = check(servicer, request("/shop.v1.Orders/Get", {"authorization": f"Bearer {token}"}))
    assert scoped.status.code == 7
    assert scoped.denied_response.status.code == 403
    challenge = set_headers(scoped.denied_response.headers)["www-authenticate"]
    assert challenge == 'Bearer error="insufficient_scope", scope="orders.read"'
    assert token not in str(scoped)


def test_a_public_method_is_allowed_without_a_token(servicer: AuthorizationServicer) -> None:
    response = check(servicer, request("/pub.Svc/M", {"x-bearer-subject": "admin"}))
    assert response.status.code == 0
    assert list(response.ok_response.headers_to_remove) == ["x-bearer-subject"]
    assert list(response.ok_response.headers) == []


def test_raw_headers_count_every_authorization_entry(
    issuer: TestIssuer, servicer: AuthorizationServicer
) -> None:
    token = issuer.token(scopes=["orders.read"]).encode()
    one = [(b"content-type", b"application/grpc"), (b"authorization", b"Bearer " + token)]
    raw = [(k.decode(), v) for k, v in one]
    assert check(servicer, request("/shop.v1.Orders/Get", {}, raw=raw)).status.code == 0
    twice = [*raw, ("authorization", b"Bearer " + token)]
    response = check(servicer, request("/shop.v1.Orders/Get", {}, raw=twice))
    assert response.status.code == 16
    assert set_headers(response.denied_response.headers)["grpc-message"] == "malformed bearer token"


def test_decisions_are_counted_by_reason(
    issuer: TestIssuer, servicer: AuthorizationServicer
) -> None:
    token = issuer.token(scopes=["orders.read"])
    check(servicer, request("/shop.v1.Orders/Get", grpc_headers(token)))
    check(servicer, request("/shop.v1.Orders/Get", grpc_headers()))
    check(servicer, request("/pub.Svc/M", grpc_headers()))
    check(servicer, request("/pub.Svc/../x", grpc_headers()))
    registry = servicer.metrics.registry
    sample = registry.get_sample_value
    name = "bearer_grpc_authz_checks_total"
    assert sample(name, {"decision": "allowed", "reason": "none"}) == 1
    assert sample(name, {"decision": "public", "reason": "none"}) == 1
    assert sample(name, {"decision": "denied", "reason": "token_missing"}) == 1
    assert sample(name, {"decision": "denied", "reason": "forbidden"}) == 1
