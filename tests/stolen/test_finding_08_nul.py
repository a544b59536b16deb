"""Finding 8: a NUL (or other control character) in a request field is INVALID_ARGUMENT on
every backend. PostgreSQL cannot store a NUL in text: it used to end the call INTERNAL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from bearer_grpc.testing import bearer
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import (
    RunningService,
    add_user,
    call_error,
    client_request,
    password_request,
    refresh_request,
)

Call = Callable[[RunningService], Any]

CASES: dict[str, Call] = {
    "client_id": lambda s: s.stub().IssueToken(client_request("orders\x00client", "secret")),
    "client_id_newline": lambda s: s.stub().IssueToken(client_request("orders\nclient", "s")),
    "client_secret": lambda s: s.stub().IssueToken(client_request("orders-client", "a\x00b")),
    "username": lambda s: s.stub().IssueToken(password_request("ali\x00ce")),
    "password": lambda s: s.stub().IssueToken(password_request("alice", "pass\x00word")),
    "refresh_token": lambda s: s.stub().IssueToken(refresh_request("\x00" * 43)),
    "revoke_token": lambda s: s.stub().RevokeToken(pb.RevokeTokenRequest(token="a.b\x00.c")),
}


@pytest.mark.parametrize("field", sorted(CASES))
def test_finding_8_nul_in_a_field_is_invalid_argument_on_every_backend(
    any_service: RunningService, field: str
) -> None:
    any_service.add_client()
    add_user(any_service)
    err = call_error(lambda request, **_: CASES[field](any_service), None)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "\x00" not in (err.details() or "")  # type: ignore[attr-defined]
    assert any_service.issue(any_service.add_client("after")).access_token  # still serving


def test_finding_8_nul_in_a_token_id_is_invalid_argument_on_every_backend(
    any_service: RunningService,
) -> None:
    own = any_service.issue(any_service.add_client()).access_token
    err = call_error(
        any_service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id="jti\x00x"),
        metadata=bearer(own),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
