"""POST /revoke (RFC 7009) and POST /introspect (RFC 7662), with the metrics and the
access log they leave (interface ``http``, no token or secret)."""

from __future__ import annotations

import json

from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import HTTP_AUDIENCE, HTTP_SCOPES, Http
from tests.http._support import Captured


def _introspect(http: Http, token: str, **form: str) -> dict[str, object]:
    answer = http.post(
        "/introspect",
        {"token": token, **form},
        auth=(http.introspector.client_id, http.introspector.client_secret),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, object] = answer.json()
    return body


def test_introspection_of_a_valid_token(http: Http) -> None:
    token = http.client_token()["access_token"]
    answer = _introspect(http, token)
    assert answer["active"] is True
    assert (answer["sub"], answer["client_id"], answer["aud"]) == ("svc-a", "svc-a", HTTP_AUDIENCE)
    assert answer["iss"] == http.issuer
    assert answer["scope"] == " ".join(sorted(HTTP_SCOPES))
    assert isinstance(answer["exp"], int) and isinstance(answer["jti"], str)
    assert _introspect(http, token, audience=HTTP_AUDIENCE)["active"] is True


def test_introspection_of_any_bad_token_says_inactive_and_nothing_else(http: Http) -> None:
    token = http.client_token()["access_token"]
    header, payload, signature = token.split(".")
    for bad in (
        "not-a-token",
        f"{header}.{payload}.{signature[:-4]}AAAA",
        "x" * 9000,
        http.client_token(audience="billing")["access_token"] + "x",
    ):
        assert _introspect(http, bad) == {"active": False}
    assert _introspect(http, token, audience="billing") == {"active": False}


def test_revoking_an_own_access_token(http: Http) -> None:
    token = http.client_token()["access_token"]
    auth = (http.client.client_id, http.client.client_secret)
    answer = http.post("/revoke", {"token": token, "token_type_hint": "access_token"}, auth=auth)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert _introspect(http, token) == {"active": False}
    verified = http.service.stub().VerifyToken(
        pb.VerifyTokenRequest(token=token, audience=HTTP_AUDIENCE), timeout=10
    )
    assert (verified.active, verified.reason) == (False, "TOKEN_REVOKED")
    again = http.post("/revoke", {"token": token}, auth=auth)
    assert again.status_code == 200  # idempotent


def test_revoking_an_unknown_token_answers_200(http: Http) -> None:
    auth = (http.client.client_id, http.client.client_secret)
    for token in ("not-a-token", "A" * 43, "x" * 9000):
        assert http.post("/revoke", {"token": token}, auth=auth).status_code == 200


def test_revoking_another_clients_token_is_refused(http: Http) -> None:
    token = http.client_token()["access_token"]
    auth = (http.introspector.client_id, http.introspector.client_secret)
    answer = http.post("/revoke", {"token": token}, auth=auth)
    assert (answer.status_code, answer.json()["error"]) == (400, "unauthorized_client")
    assert _introspect(http, token)["active"] is True


def test_revocation_needs_client_authentication(http: Http) -> None:
    token = http.client_token()["access_token"]
    answer = http.post("/revoke", {"token": token})
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    wrong = http.post("/revoke", {"token": token}, auth=(http.client.client_id, "nope-nope"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    missing = http.post(
        "/revoke",
        {"token_type_hint": "access_token"},
        auth=(http.client.client_id, http.client.client_secret),
    )
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert _introspect(http, token)["active"] is True


def test_metrics_carry_the_interface_and_the_log_no_secret(http: Http, captured: Captured) -> None:
    token = http.client_token()["access_token"]
    http.post("/token", {"grant_type": "client_credentials"}, auth=("svc-a", "wrong-one"))
    _introspect(http, token)
    registry = http.service.server.metrics.registry
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }
    issued = samples[
        (
            "bearer_grpc_tokens_issued_total",
            (("grant", "client_credentials"), ("interface", "http"), ("outcome", "issued")),
        )
    ]
    assert issued >= 1
    refused = samples[
        (
            "bearer_grpc_tokens_issued_total",
            (("grant", "client_credentials"), ("interface", "http"), ("outcome", "invalid_grant")),
        )
    ]
    assert refused >= 1
    active = (
        "bearer_grpc_verifications_total",
        (("interface", "http"), ("reason", "none"), ("result", "active")),
    )
    assert samples[active] >= 1
    lines = [json.loads(line) for line in captured.lines]
    calls = [line for line in lines if line.get("interface") == "http"]
    assert {line["method"] for line in calls} >= {"POST token", "POST introspect"}
    assert any(line["code"] == "invalid_client" and line["status"] == 401 for line in calls)
    for secret in (token, http.client.client_secret, http.introspector.client_secret):
        assert secret not in captured.text
