"""One access-log record per call, and no secret in any log record or repr."""

from __future__ import annotations

import logging

import grpc
import pytest

from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.grants import (
    ClientCredentialsGrant,
    Issued,
    PasswordGrant,
    RefreshGrant,
)
from bearer_grpc.service.log_format import JsonFormatter
from bearer_grpc.testing import bearer
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import (
    PASSWORD,
    RunningService,
    add_user,
    call_error,
    client_request,
    password_request,
    refresh_request,
    verify,
)


def _record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), repr(record.args), JsonFormatter().format(record)]
    texts += [repr(value) for value in record.__dict__.values()]
    return texts


def test_one_call_record_per_rpc_and_no_secrets_logged(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(service, "alice")
    client = service.add_client()
    stub = service.stub()
    caplog.set_level(logging.DEBUG, logger="bearer_grpc")
    caplog.clear()

    cc = stub.IssueToken(client_request(client.client_id, client.client_secret), timeout=10)
    login = stub.IssueToken(password_request("alice"), timeout=10)
    refreshed = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)
    assert verify(stub, cc.access_token).active
    stub.RevokeToken(pb.RevokeTokenRequest(token=cc.access_token), timeout=10)
    err = call_error(stub.IssueToken, client_request(client.client_id, "wrong-" + PASSWORD))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    denied = call_error(
        stub.RevokeToken,
        pb.RevokeTokenRequest(token_id="some-other-jti"),
        metadata=bearer(refreshed.access_token),
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]

    calls = [
        (r.__dict__.get("method"), r.__dict__.get("code"))
        for r in caplog.records
        if r.name.startswith("bearer_grpc") and r.getMessage() == "call"
    ]
    assert calls == [
        ("IssueToken", "OK"),
        ("IssueToken", "OK"),
        ("IssueToken", "OK"),
        ("VerifyToken", "OK"),
        ("RevokeToken", "OK"),
        ("IssueToken", "UNAUTHENTICATED"),
        ("RevokeToken", "PERMISSION_DENIED"),
    ]
    denied_record = [r for r in caplog.records if r.__dict__.get("code") == "PERMISSION_DENIED"]
    assert denied_record[0].__dict__.get("reason") == "INSUFFICIENT_SCOPE"

    secrets = {
        "client secret": client.client_secret,
        "password": PASSWORD,
        "cc access token": cc.access_token,
        "password access token": login.access_token,
        "refreshed access token": refreshed.access_token,
        "refresh token": login.refresh_token,
        "rotated refresh token": refreshed.refresh_token,
    }
    # Signatures alone would be enough to leak a token; check them separately too.
    secrets |= {f"{k} signature": v.rsplit(".", 1)[1] for k, v in secrets.items() if "." in v}
    for record in caplog.records:
        for text in _record_texts(record):
            for what, secret in secrets.items():
                assert secret not in text, f"{what} in log record {record.name}: {text[:200]}"


def test_verify_token_ok_lines_are_debug_errors_stay_info(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    client = service.add_client()
    stub = service.stub()
    token = stub.IssueToken(client_request(client.client_id, client.client_secret), timeout=10)
    caplog.set_level(logging.INFO, logger="bearer_grpc")
    caplog.clear()

    assert verify(stub, token.access_token).active
    assert not verify(stub, "not-a-token").active  # inactive is still an OK call
    err = call_error(stub.VerifyToken, pb.VerifyTokenRequest(token=token.access_token))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    stub.RevokeToken(pb.RevokeTokenRequest(token=token.access_token), timeout=10)

    calls = [
        (r.__dict__.get("method"), r.__dict__.get("code"))
        for r in caplog.records
        if r.name.startswith("bearer_grpc") and r.getMessage() == "call"
    ]
    assert calls == [("VerifyToken", "INVALID_ARGUMENT"), ("RevokeToken", "OK")]


@pytest.mark.slow
def test_failed_refresh_reuse_logs_no_token(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(service, "alice")
    stub = service.stub()
    login = stub.IssueToken(password_request("alice"), timeout=10)
    stub.IssueToken(refresh_request(login.refresh_token), timeout=10)
    caplog.set_level(logging.DEBUG, logger="bearer_grpc")
    call_error(stub.IssueToken, refresh_request(login.refresh_token))
    assert any("reuse" in r.getMessage() for r in caplog.records)  # the event is visible
    for record in caplog.records:
        for text in _record_texts(record):
            assert login.refresh_token not in text
            assert login.access_token not in text


def test_grants_hide_secrets_in_repr() -> None:
    for value, secret in (
        (ClientCredentialsGrant("orders-client", "s3cr3t-client-secret"), "s3cr3t-client-secret"),
        (PasswordGrant("alice", "s3cr3t-password"), "s3cr3t-password"),
        (RefreshGrant("s3cr3t-refresh-token"), "s3cr3t-refresh-token"),
    ):
        assert secret not in repr(value)
        assert secret not in str(value)


def test_issued_hides_tokens_in_repr() -> None:
    issued = Issued(
        access=IssuedToken(token="eyJ.s3cr3t-access.sig", token_id="jti-1", expires_at=1),
        scopes=("orders.read",),
        lifetime=900,
        refresh_token="s3cr3t-refresh-token",
        refresh_lifetime=3600,
    )
    text = repr(issued)
    assert "s3cr3t-access" not in text and "s3cr3t-refresh-token" not in text
    assert "jti-1" in text  # the id is not secret and helps debugging


def test_new_client_hides_secret_in_repr() -> None:
    created = NewClient(client_id="orders-client", client_secret="s3cr3t-client-secret")
    assert "s3cr3t-client-secret" not in repr(created)
    assert "s3cr3t-client-secret" not in str(created)
    assert "orders-client" in repr(created)
