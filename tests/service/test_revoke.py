"""RevokeToken: by value (possession suffices) and by token_id (own token, or admin)."""

from __future__ import annotations

import re

import grpc
import pytest

from bearer_grpc.testing import FrozenClock, bearer, error_info
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import (
    RunningService,
    add_user,
    call_error,
    jwt_segment,
    password_request,
    refresh_request,
    verify,
)
from tests.service.conftest import trailer

# RFC 6750 §3: auth-scheme, then comma-separated auth-params with quoted values.
_CHALLENGE = re.compile(r'Bearer( [a-z_]+="[^"\\]*"(, [a-z_]+="[^"\\]*")*)?')


def _challenge(err: grpc.RpcError) -> str:
    values = trailer(err, "www-authenticate")
    assert len(values) == 1, values
    value = values[0]
    assert isinstance(value, str)
    assert _CHALLENGE.fullmatch(value), value
    return value


def _revoke_id(
    service: RunningService, token_id: str, metadata: tuple[tuple[str, str], ...] = ()
) -> pb.RevokeTokenResponse:
    response: pb.RevokeTokenResponse = service.stub().RevokeToken(
        pb.RevokeTokenRequest(token_id=token_id), metadata=metadata, timeout=10
    )
    return response


# -- by value -----------------------------------------------------------------------------


def test_revoke_by_value_needs_only_possession(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    stub = shared_service.stub()
    response = stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    assert response.sequence > 0
    result = verify(stub, issued.access_token)
    assert (result.active, result.reason) == (False, "TOKEN_REVOKED")


def test_revoke_by_value_is_idempotent(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    stub = shared_service.stub()
    first = stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    second = stub.RevokeToken(pb.RevokeTokenRequest(token=issued.access_token), timeout=10)
    assert first.sequence == second.sequence > 0


def test_revoke_only_the_named_token(shared_service: RunningService) -> None:
    client = shared_service.add_client()
    revoked, kept = shared_service.issue(client), shared_service.issue(client)
    shared_service.stub().RevokeToken(pb.RevokeTokenRequest(token=revoked.access_token), timeout=10)
    assert verify(shared_service.stub(), kept.access_token).active


def test_revoke_refresh_token_by_value_revokes_its_family(service: RunningService) -> None:
    add_user(service, "alice")
    stub = service.stub()
    login = stub.IssueToken(password_request("alice"), timeout=10)
    refreshed = stub.IssueToken(refresh_request(login.refresh_token), timeout=10)

    response = stub.RevokeToken(pb.RevokeTokenRequest(token=refreshed.refresh_token), timeout=10)
    assert response.sequence == 0
    for issued in (login, refreshed):
        assert verify(stub, issued.access_token).reason == "TOKEN_REVOKED"
    err = call_error(stub.IssueToken, refresh_request(refreshed.refresh_token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    again = stub.RevokeToken(pb.RevokeTokenRequest(token=refreshed.refresh_token), timeout=10)
    assert again.sequence == 0


def test_revoke_unknown_refresh_token_is_invalid_argument(shared_service: RunningService) -> None:
    err = call_error(shared_service.stub().RevokeToken, pb.RevokeTokenRequest(token="A" * 43))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 9000, ""])
def test_revoke_garbage_value_is_invalid_argument(
    shared_service: RunningService, token: str
) -> None:
    err = call_error(shared_service.stub().RevokeToken, pb.RevokeTokenRequest(token=token))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_revoke_expired_token_value_is_ok_with_sequence_zero(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    issued = clocked_service.issue(clocked_service.add_client())
    exp = jwt_segment(issued.access_token, 1)["exp"]
    clock.now = exp + clocked_service.authority.settings.leeway
    response = clocked_service.stub().RevokeToken(
        pb.RevokeTokenRequest(token=issued.access_token), timeout=10
    )
    assert response.sequence == 0


def test_revoke_without_target_is_invalid_argument(shared_service: RunningService) -> None:
    err = call_error(shared_service.stub().RevokeToken, pb.RevokeTokenRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


# -- by token_id ---------------------------------------------------------------------------


def test_revoke_own_token_by_id(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    jti = jwt_segment(issued.access_token, 1)["jti"]
    response = _revoke_id(shared_service, jti, bearer(issued.access_token))
    assert response.sequence > 0
    assert verify(shared_service.stub(), issued.access_token).reason == "TOKEN_REVOKED"
    # Idempotent, even with the now revoked token as credential.
    assert (
        _revoke_id(shared_service, jti, bearer(issued.access_token)).sequence == response.sequence
    )


def test_revoke_anothers_token_without_admin_scope_is_permission_denied(
    service: RunningService,
) -> None:
    victim = service.issue(service.add_client("victim"))
    attacker = service.issue(service.add_client("attacker"))
    err = call_error(
        service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=jwt_segment(victim.access_token, 1)["jti"]),
        metadata=bearer(attacker.access_token),
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None
    assert (info.reason, info.domain) == ("INSUFFICIENT_SCOPE", "bearer-grpc")
    assert info.metadata["required_scopes"] == "bearer-grpc:admin"
    assert _challenge(err) == 'Bearer error="insufficient_scope", scope="bearer-grpc:admin"'
    assert verify(service.stub(), victim.access_token).active


def test_revoke_anothers_token_with_admin_scope(service: RunningService) -> None:
    victim = service.issue(service.add_client("victim"))
    admin = service.issue(
        service.add_client("operator", scopes=("bearer-grpc:admin",), audiences=("bearer-grpc",))
    )
    response = _revoke_id(
        service, jwt_segment(victim.access_token, 1)["jti"], bearer(admin.access_token)
    )
    assert response.sequence > 0
    assert verify(service.stub(), victim.access_token).reason == "TOKEN_REVOKED"


def test_admin_token_for_another_audience_cannot_revoke_others(service: RunningService) -> None:
    """An admin's token for some resource server (aud=orders) must not be replayable at the
    TokenService: the admin path needs a token for the audience ``bearer-grpc``."""
    victim = service.issue(service.add_client("victim"))
    admin = service.issue(
        service.add_client("operator", scopes=("bearer-grpc:admin",), audiences=("orders",))
    )
    err = call_error(
        service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=jwt_segment(victim.access_token, 1)["jti"]),
        metadata=bearer(admin.access_token),
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert verify(service.stub(), victim.access_token).active


def test_revoked_admin_token_cannot_revoke_others(service: RunningService) -> None:
    victim = service.issue(service.add_client("victim"))
    admin = service.issue(service.add_client("operator", scopes=("bearer-grpc:admin",)))
    service.stub().RevokeToken(pb.RevokeTokenRequest(token=admin.access_token), timeout=10)
    err = call_error(
        service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=jwt_segment(victim.access_token, 1)["jti"]),
        metadata=bearer(admin.access_token),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None and info.reason == "TOKEN_REVOKED"
    _challenge(err)
    assert verify(service.stub(), victim.access_token).active


def test_revoke_by_id_without_authorization_is_token_missing(
    shared_service: RunningService,
) -> None:
    err = call_error(shared_service.stub().RevokeToken, pb.RevokeTokenRequest(token_id="some-jti"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None
    assert (info.reason, info.domain) == ("TOKEN_MISSING", "bearer-grpc")
    assert _challenge(err) == "Bearer"


def test_revoke_by_id_with_two_authorizations_is_token_malformed(
    shared_service: RunningService,
) -> None:
    issued = shared_service.issue(shared_service.add_client())
    jti = jwt_segment(issued.access_token, 1)["jti"]
    err = call_error(
        shared_service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=jti),
        metadata=bearer(issued.access_token) * 2,
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None and info.reason == "TOKEN_MALFORMED"
    assert _challenge(err).startswith('Bearer error="invalid_request"')
    assert issued.access_token not in err.details()  # type: ignore[attr-defined]
    assert verify(shared_service.stub(), issued.access_token).active


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer a,b"])
def test_revoke_by_id_with_non_bearer_authorization_is_token_malformed(
    shared_service: RunningService, value: str
) -> None:
    err = call_error(
        shared_service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id="some-jti"),
        metadata=(("authorization", value),),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None and info.reason == "TOKEN_MALFORMED"
    _challenge(err)


def test_revoke_by_id_with_invalid_caller_token_is_token_invalid(
    shared_service: RunningService,
) -> None:
    issued = shared_service.issue(shared_service.add_client())
    header, claims, signature = issued.access_token.split(".")
    bad_tail = "AAAA" if signature[-4:] != "AAAA" else "BBBB"
    forged = ".".join([header, claims, signature[:-4] + bad_tail])
    err = call_error(
        shared_service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=jwt_segment(issued.access_token, 1)["jti"]),
        metadata=bearer(forged),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None and info.reason == "TOKEN_INVALID"
    assert _challenge(err).startswith('Bearer error="invalid_token"')
    assert verify(shared_service.stub(), issued.access_token).active


def test_revoke_by_id_with_expired_caller_token_is_token_expired(
    clocked_service: RunningService, clock: FrozenClock
) -> None:
    issued = clocked_service.issue(clocked_service.add_client())
    claims = jwt_segment(issued.access_token, 1)
    clock.now = claims["exp"] + clocked_service.authority.settings.leeway
    err = call_error(
        clocked_service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=claims["jti"]),
        metadata=bearer(issued.access_token),
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    info = error_info(err)
    assert info is not None and info.reason == "TOKEN_EXPIRED"
    _challenge(err)


def test_revoke_by_empty_id_is_invalid_argument(shared_service: RunningService) -> None:
    issued = shared_service.issue(shared_service.add_client())
    err = call_error(
        shared_service.stub().RevokeToken,
        pb.RevokeTokenRequest(token_id=""),
        metadata=bearer(issued.access_token),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
