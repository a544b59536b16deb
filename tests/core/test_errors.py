"""The error tree: the wire's ErrorInfo reasons and terse public messages."""

from __future__ import annotations

import pytest

from bearer_grpc.core import errors
from bearer_grpc.core.errors import (
    AuthError,
    BearerGrpcError,
    InsufficientScope,
    ServiceError,
    TokenBindingMismatch,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
    VerifierUnavailable,
)

# The ErrorInfo reason of every auth failure: a wire contract that clients in any language
# read, so a change here is a breaking change.
REASONS = {
    TokenMissing: "TOKEN_MISSING",
    TokenMalformed: "TOKEN_MALFORMED",
    TokenInvalid: "TOKEN_INVALID",
    TokenExpired: "TOKEN_EXPIRED",
    TokenRevoked: "TOKEN_REVOKED",
    TokenBindingMismatch: "TOKEN_BINDING_MISMATCH",
    InsufficientScope: "INSUFFICIENT_SCOPE",
    VerifierUnavailable: "VERIFIER_UNAVAILABLE",
}


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def _error_classes() -> list[type[BearerGrpcError]]:
    return [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, BearerGrpcError)
    ]


def test_every_auth_error_subclass_has_a_reason_from_design() -> None:
    assert _subclasses(AuthError) == set(REASONS)


@pytest.mark.parametrize("cls", list(REASONS), ids=lambda c: c.__name__)
def test_auth_error_reason_matches_design(cls: type[AuthError]) -> None:
    assert cls.reason == REASONS[cls]
    assert cls().reason == REASONS[cls]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_default_message_is_terse(cls: type[BearerGrpcError]) -> None:
    err = cls()
    assert err.message == cls.default_message
    assert str(err) == err.message
    assert 0 < len(err.message) <= 40
    assert err.message.isascii()
    assert "\n" not in err.message


def test_reasons_are_distinct() -> None:
    assert len(set(REASONS.values())) == len(REASONS)


def test_message_overrides_default() -> None:
    err = TokenInvalid("bad audience")
    assert err.message == "bad audience"
    assert str(err) == "bad audience"


def test_empty_message_falls_back_to_default() -> None:
    assert TokenMalformed("").message == TokenMalformed.default_message


def test_insufficient_scope_carries_required_scopes() -> None:
    err = InsufficientScope(("orders.read", "orders.write"))
    assert err.required_scopes == ("orders.read", "orders.write")
    assert err.reason == "INSUFFICIENT_SCOPE"
    assert str(err) == InsufficientScope.default_message


def test_insufficient_scope_defaults_to_no_scopes() -> None:
    assert InsufficientScope().required_scopes == ()


def test_service_errors_are_not_auth_errors() -> None:
    for cls in _subclasses(ServiceError):
        assert not issubclass(cls, AuthError)
    assert issubclass(AuthError, BearerGrpcError)
    assert issubclass(ServiceError, BearerGrpcError)
