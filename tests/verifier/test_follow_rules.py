"""The rules verifiers follow a TokenService by (``bearer_grpc._verifier``), no network."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from google.protobuf import struct_pb2

from bearer_grpc import Backoff
from bearer_grpc._channel import Endpoint
from bearer_grpc._verifier.keys import RefetchGate, apply_jwks
from bearer_grpc._verifier.remote import accept_remote
from bearer_grpc._verifier.revocations import apply_revocation, prune
from bearer_grpc.core.errors import (
    AuthError,
    KeyMaterialError,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenRevoked,
)
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.core.verification import LocalVerification
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.verifier.conftest import foreign_token

NOW = 1_700_000_000


def _local(**options: Any) -> LocalVerification:
    return LocalVerification(issuer="", audience="orders", clock=lambda: NOW, **options)


def _jwks(*keys: SigningKey) -> str:
    return json.dumps({"keys": [dict(key.jwk) for key in keys]})


# -- backoff and rate limit -------------------------------------------------------------


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2)
    top = list(itertools.islice(backoff.delays(rng=lambda: 0.999999), 6))
    bottom = list(itertools.islice(backoff.delays(rng=lambda: 0.0), 6))
    assert top == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0], rel=1e-5)
    assert bottom == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.5, 0.5])


@pytest.mark.parametrize(
    "options", [{"initial": 0}, {"initial": 2, "maximum": 1}, {"multiplier": 0.5}]
)
def test_backoff_rejects_nonsense(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**options)


def test_channel_reconnects_no_slower_than_the_backoff() -> None:
    options = dict(Endpoint("t:1", backoff=Backoff(initial=0.05, maximum=0.5)).options())
    assert options["grpc.initial_reconnect_backoff_ms"] == 50
    assert options["grpc.max_reconnect_backoff_ms"] == 500


def test_refetch_gate_lets_one_through_per_interval() -> None:
    now = [100.0]
    gate = RefetchGate(30, clock=lambda: now[0])
    assert gate.try_pass()
    assert not gate.try_pass()
    now[0] += 29.9
    assert not gate.try_pass()
    now[0] += 0.1
    assert gate.try_pass()


def test_refetch_gate_is_per_kid_with_a_spacing_for_all() -> None:
    now = [100.0]
    gate = RefetchGate(30, clock=lambda: now[0], spacing=1)
    assert gate.try_pass("made-up")
    assert not gate.try_pass("new-key")  # within the spacing of any refetch
    now[0] += 1
    assert gate.try_pass("new-key")  # a made-up kid does not hold it back for 30 s
    now[0] += 1
    assert not gate.try_pass("made-up")  # looked for 2 s ago
    assert not gate.try_pass("new-key")
    now[0] += 28
    assert gate.try_pass("made-up")


def test_refetch_gate_remembers_a_bounded_number_of_kids() -> None:
    now = [100.0]
    gate = RefetchGate(30, clock=lambda: now[0], spacing=0.001, remember=3)
    for kid in ("a", "b", "c", "d"):
        assert gate.try_pass(kid)
        now[0] += 0.001
    assert len(gate._tried) == 3
    assert gate.try_pass("a")  # forgotten (the oldest), so looked for again
    assert not gate.try_pass("d")


def test_refetch_gate_spacing_never_exceeds_the_interval() -> None:
    now = [100.0]
    gate = RefetchGate(0, clock=lambda: now[0])
    assert gate.try_pass("a")
    assert gate.try_pass("a")  # refetch_interval=0: no limit at all


def test_apply_jwks_takes_keys_and_issuer() -> None:
    local, key = _local(), SigningKey.generate()
    apply_jwks(local, pb.GetJwksResponse(jwks_json=_jwks(key), issuer="https://auth"))
    assert local.keys is not None and list(local.keys) == [key.kid]
    assert local.issuer == "https://auth"


@pytest.mark.parametrize(
    "response",
    [
        pb.GetJwksResponse(jwks_json="not json", issuer="i"),
        pb.GetJwksResponse(jwks_json='{"keys": []}', issuer="i"),
        pb.GetJwksResponse(jwks_json=_jwks(SigningKey.generate()), issuer=""),
        pb.GetJwksResponse(
            jwks_json=json.dumps({"keys": [{**SigningKey.generate().jwk, "d": "c2VjcmV0"}]}),
            issuer="i",
        ),
    ],
    ids=["not-json", "empty", "no-issuer", "private-member"],
)
def test_bad_jwks_is_refused_and_the_last_known_good_keys_stay(
    response: pb.GetJwksResponse,
) -> None:
    local, good = _local(), SigningKey.generate()
    apply_jwks(local, pb.GetJwksResponse(jwks_json=_jwks(good), issuer="i"))
    with pytest.raises(KeyMaterialError):
        apply_jwks(local, response)
    assert local.keys is not None and list(local.keys) == [good.kid]
    assert local.issuer == "i"


def test_unknown_kid_only_once_keys_are_known() -> None:
    local, key = _local(), SigningKey.generate()
    token = foreign_token("i")
    assert not local.needs_key_refetch(token)  # no keys yet: fail closed, nothing to refetch
    apply_jwks(local, pb.GetJwksResponse(jwks_json=_jwks(key), issuer="i"))
    assert local.needs_key_refetch(token)


def test_revocation_events_advance_the_sequence_and_expire() -> None:
    local = _local(leeway=30)
    apply_revocation(local, pb.WatchRevocationsResponse(sequence=3, token_id="a", expires_at=NOW))
    stale = pb.WatchRevocationsResponse(sequence=4, token_id="b", expires_at=NOW - 31)
    apply_revocation(local, stale)
    assert local.revocations.sequence == 4
    assert prune(local) == 1
    assert "a" in local.revocations and "b" not in local.revocations
    assert local.revocations.sequence == 4


# -- remote answers ---------------------------------------------------------------------


def _active(**fields: Any) -> pb.VerifyTokenResponse:
    claims = struct_pb2.Struct()
    claims.update({"exp": NOW + 60, "iat": NOW, "ratio": 0.5, "nested": {"n": [1, 2.5]}})
    values: dict[str, Any] = {
        "active": True,
        "subject": "svc",
        "scopes": ["a", "b"],
        "audience": ["orders"],
        "issuer": "i",
        "token_id": "jti-1",
        "issued_at": NOW,
        "expires_at": NOW + 60,
        "client_id": "svc",
        "claims": claims,
    }
    return pb.VerifyTokenResponse(**(values | fields))


def test_active_answer_becomes_a_cached_principal() -> None:
    local = _local()
    principal = accept_remote(local, "tok", _active())
    assert principal.subject == "svc" and principal.scopes == {"a", "b"}
    assert principal.audience == ("orders",) and principal.expires_at == NOW + 60
    assert principal.claims["exp"] == NOW + 60 and type(principal.claims["exp"]) is int
    assert principal.claims["ratio"] == 0.5
    assert principal.claims["nested"] == {"n": [1, 2.5]}
    assert local.lookup("tok") == principal


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("TOKEN_MALFORMED", TokenMalformed),
        ("TOKEN_INVALID", TokenInvalid),
        ("TOKEN_EXPIRED", TokenExpired),
        ("TOKEN_REVOKED", TokenRevoked),
        ("INSUFFICIENT_SCOPE", TokenInvalid),  # never asked for: the policy checks scopes
        ("SOMETHING_NEW", TokenInvalid),
        ("", TokenInvalid),
    ],
)
def test_inactive_answer_raises_the_error_its_reason_names(
    reason: str, error: type[AuthError]
) -> None:
    local = _local()
    with pytest.raises(error) as info:
        accept_remote(local, "tok", pb.VerifyTokenResponse(active=False, reason=reason))
    assert type(info.value) is error
    assert local.lookup("tok") is None


def test_incomplete_active_answer_is_invalid() -> None:
    with pytest.raises(TokenInvalid):
        accept_remote(_local(), "tok", _active(token_id=""))


def test_active_answer_for_a_token_revoked_here_is_refused() -> None:
    local = _local()
    local.revocations.add("jti-1", NOW + 60, 1)
    with pytest.raises(TokenRevoked):
        accept_remote(local, "tok", _active())
    assert local.lookup("tok") is None
