"""Property-based: the parsers never crash, and the TokenService answers every request
with a clean status and keeps serving.

Example counts are modest and the runs derandomized (``derandomize=True``) so CI sees
the same examples every time; ``deadline=None`` because a call crosses threads.
"""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearer_grpc._verifier.revocations import watch_request
from bearer_grpc.core.errors import AuthError, TokenMalformed, TokenMissing
from bearer_grpc.core.header import B64TOKEN, bearer_token
from bearer_grpc.core.keys import PublicKeySet
from bearer_grpc.core.tokens import TokenVerifier
from bearer_grpc.testing import path
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.security.conftest import ISSUER, START, Deployment, Deployments


def steady(examples: int) -> settings:
    """Derandomized, no deadline, no example database: the same run on every machine."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


CLEAN = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # requests over the 64 KiB message bound
    }
)
"""Every status a TokenService call may end with; never INTERNAL or UNKNOWN."""
CALL_DEADLINE = 10.0

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=B64_ALPHABET, max_size=200),
    st.text(max_size=3000),
    st.integers(min_value=0, max_value=70_000).map(lambda n: "x" * n),
)
keys = st.sampled_from(["authorization", "Authorization", "authorization-bin", "x-other", ""])
values = st.one_of(
    st.text(max_size=60),
    st.builds(lambda s, t: f"{s} {t}", st.sampled_from(["Bearer", "bearer", "Basic"]), st.text()),
    st.binary(max_size=40),
)


@steady(150)
@given(metadata=st.none() | st.lists(st.tuples(keys, values), max_size=4))
def test_header_parser_returns_a_b64token_or_raises_token_errors(metadata: Any) -> None:
    try:
        token = bearer_token(metadata)
    except (TokenMissing, TokenMalformed):
        return
    assert B64TOKEN.fullmatch(token)


@pytest.fixture(scope="module")
def es256(deployments: Deployments) -> Deployment:
    return deployments["ES256"]


@pytest.fixture(scope="module")
def core_verifier(es256: Deployment) -> TokenVerifier:
    keys_ = PublicKeySet({"keys": [dict(es256.kit.key.jwk)]})
    return TokenVerifier(keys_, issuer=ISSUER, clock=lambda: START)


def _verify_or_auth_error(verifier: TokenVerifier, token: Any) -> None:
    with contextlib.suppress(AuthError):
        verifier.verify(token, audience="echo")


@steady(300)
@given(token=st.one_of(texts, st.binary(max_size=200), st.none(), st.integers()))
def test_verifier_raises_only_auth_errors_for_anything(
    core_verifier: TokenVerifier, token: Any
) -> None:
    _verify_or_auth_error(core_verifier, token)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["replace", "insert", "delete", "swap"]),
        st.integers(min_value=0, max_value=10_000),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(token: str, edits: list[tuple[str, int, str]]) -> str:
    text = token
    for op, at, char in edits:
        i = at % (len(text) or 1)
        if op == "replace":
            text = text[:i] + char + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + char + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        elif len(text) > i + 1:
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


@steady(300)
@given(edits=mutations)
def test_mutated_valid_token_is_refused_with_an_auth_error_or_unchanged(
    es256: Deployment, core_verifier: TokenVerifier, edits: list[tuple[str, int, str]]
) -> None:
    original = es256.kit.legit()
    mutated = _mutate(original, edits)
    try:
        principal = core_verifier.verify(mutated, audience="echo")
    except AuthError:
        return
    # Accepted only if the edit cancelled out: same signed bytes, same claims.
    assert mutated == original, "a mutated token was accepted"
    assert principal.subject == "svc-checkout"


# --- every TokenService request, random field values, over the real service ----------------

strings = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=B64_ALPHABET, max_size=120),
    st.text(min_size=200, max_size=600),
    st.integers(min_value=1_000, max_value=80_000).map(lambda n: "\u00e9" * n),
)
scope_lists = st.lists(
    st.one_of(st.sampled_from(["echo.use", "bearer-grpc:admin"]), strings), max_size=4
)
fast_grants = st.one_of(
    st.builds(
        lambda i, s: {
            "client_credentials": pb.ClientCredentialsGrant(client_id=i, client_secret=s)
        },
        strings,
        strings,
    ),
    st.builds(lambda r: {"refresh_token": pb.RefreshTokenGrant(refresh_token=r)}, strings),
    st.just({}),
)
issue_requests = st.builds(
    lambda grant, scopes, aud: pb.IssueTokenRequest(**grant, scopes=scopes, audience=aud),
    fast_grants,
    scope_lists,
    strings,
)
password_requests = st.builds(
    lambda u, p, aud: pb.IssueTokenRequest(
        password=pb.PasswordGrant(username=u, password=p), audience=aud
    ),
    strings,
    strings,
    strings,
)
verify_requests = st.builds(
    lambda t, a, s: pb.VerifyTokenRequest(token=t, audience=a, required_scopes=s),
    st.one_of(strings, st.just("")),
    strings,
    scope_lists,
)
revoke_requests = st.one_of(
    st.builds(lambda t: pb.RevokeTokenRequest(token=t), strings),
    st.builds(lambda t: pb.RevokeTokenRequest(token_id=t), strings),
    st.just(pb.RevokeTokenRequest()),
)
metadata = st.one_of(
    st.just(()),
    st.builds(
        lambda t: (("authorization", f"Bearer {t}"),), st.text(alphabet=B64_ALPHABET, max_size=300)
    ),
)


def _status(action: Any) -> grpc.StatusCode:
    try:
        action()
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _still_serving(deployment: Deployment) -> None:
    response = deployment.stub.GetJwks(pb.GetJwksRequest(), timeout=CALL_DEADLINE)
    assert response.issuer == ISSUER


@pytest.mark.slow
@steady(60)
@given(request=issue_requests)
def test_issue_token_ends_cleanly(es256: Deployment, request: pb.IssueTokenRequest) -> None:
    code = _status(lambda: es256.stub.IssueToken(request, timeout=CALL_DEADLINE))
    assert code in CLEAN - {grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED}, code
    _still_serving(es256)


@steady(4)
@given(request=password_requests)
def test_password_grant_ends_cleanly(es256: Deployment, request: pb.IssueTokenRequest) -> None:
    code = _status(lambda: es256.stub.IssueToken(request, timeout=CALL_DEADLINE))
    assert code in CLEAN - {grpc.StatusCode.OK}, code
    _still_serving(es256)


@pytest.mark.slow
@steady(80)
@given(request=verify_requests)
def test_verify_token_ends_cleanly(es256: Deployment, request: pb.VerifyTokenRequest) -> None:
    response: list[pb.VerifyTokenResponse] = []
    code = _status(lambda: response.append(es256.stub.VerifyToken(request, timeout=CALL_DEADLINE)))
    assert code in CLEAN, code
    if response:
        assert not response[0].active
    _still_serving(es256)


@pytest.mark.slow
@steady(60)
@given(request=revoke_requests, sent=metadata)
def test_revoke_token_ends_cleanly(
    es256: Deployment, request: pb.RevokeTokenRequest, sent: Any
) -> None:
    code = _status(lambda: es256.stub.RevokeToken(request, metadata=sent, timeout=CALL_DEADLINE))
    assert code in CLEAN - {grpc.StatusCode.OK}, code
    _still_serving(es256)


@steady(20)
@given(after=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_watch_revocations_ends_cleanly(es256: Deployment, after: int) -> None:
    """Negative sequences are INVALID_ARGUMENT; others stream (cancelled after the
    initial metadata, which proves the server answered)."""
    stream = es256.stub.WatchRevocations(watch_request(after), timeout=CALL_DEADLINE)
    if after < 0:
        assert _status(lambda: list(stream)) == grpc.StatusCode.INVALID_ARGUMENT
    else:
        assert stream.initial_metadata() is not None
        stream.cancel()
    _still_serving(es256)


@steady(40)
@given(value=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=400))
def test_protected_server_answers_any_printable_authorization(
    es256: Deployment, value: str
) -> None:
    for server in es256.servers.values():
        before = server.echo.calls
        unary = server.channel.unary_unary(path("Unary"))
        code = _status(
            lambda u=unary: u(b"hi", metadata=(("authorization", value),), timeout=CALL_DEADLINE)
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED, code
        assert server.echo.calls == before
