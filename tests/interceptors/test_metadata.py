"""Reading the credential off the wire: exactly one ``authorization`` entry with the
``Bearer`` scheme (case-insensitive); a second entry, another scheme or ``authorization-bin``
is no credential."""

from __future__ import annotations

import grpc
import pytest

from bearer_grpc.testing import LoopThread, TestIssuer, call, path
from tests.harness import Protected, assert_challenged, echo_policy, protect, refusal
from tests.interceptors.support import ALICE, TIMEOUT, alice, who

MALFORMED = 'Bearer error="invalid_request", error_description="malformed bearer token"'


def test_two_authorization_entries_are_malformed(server: Protected, issuer: TestIssuer) -> None:
    token = alice(issuer).token
    metadata = (("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}"))
    unary = server.channel.unary_unary(path("Unary"))

    error = refusal(lambda: unary(b"hi", metadata=metadata, timeout=TIMEOUT))

    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MALFORMED", MALFORMED)
    assert server.echo.calls == 0


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_scheme_is_case_insensitive(server: Protected, issuer: TestIssuer, scheme: str) -> None:
    metadata = (("authorization", f"{scheme} {alice(issuer).token}"),)
    unary = server.channel.unary_unary(path("Unary"))
    assert who(unary(b"hi", metadata=metadata, timeout=TIMEOUT)) == ALICE


@pytest.mark.parametrize("scheme", ["Basic", "Token"])
def test_other_schemes_are_malformed(server: Protected, issuer: TestIssuer, scheme: str) -> None:
    metadata = (("authorization", f"{scheme} {alice(issuer).token}"),)
    unary = server.channel.unary_unary(path("Unary"))
    error = refusal(lambda: unary(b"hi", metadata=metadata, timeout=TIMEOUT))
    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MALFORMED", MALFORMED)


def test_authorization_bin_is_no_credential(server: Protected, issuer: TestIssuer) -> None:
    metadata = (("authorization-bin", f"Bearer {alice(issuer).token}".encode()),)
    unary = server.channel.unary_unary(path("Unary"))
    error = refusal(lambda: unary(b"hi", metadata=metadata, timeout=TIMEOUT))
    assert_challenged(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING", "Bearer")


def test_access_token_call_credentials_are_accepted(
    server: Protected, issuer: TestIssuer, loop: LoopThread
) -> None:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(),
        grpc.access_token_call_credentials(alice(issuer).token),
    )
    with (
        protect(
            server.flavour,
            server.verifier,
            echo_policy(),
            loop=loop,
            credentials=grpc.local_server_credentials(),
        ) as local,
        grpc.secure_channel(local.target, credentials) as channel,
    ):
        assert [who(answer) for answer in call(channel, "unary_unary")] == [ALICE]
        assert [who(answer) for answer in call(channel, "stream_stream")] == [ALICE] * 2
