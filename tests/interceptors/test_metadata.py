"""Reading the credential off the wire: exactly one `authorization` entry, never a `-bin` key."""

from __future__ import annotations

import grpc
import pytest

from tests.interceptors.echo import path
from tests.interceptors.support import TIMEOUT, Server, Tokens, assert_refused, refusal

MALFORMED = 'Bearer error="invalid_request", error_description="malformed bearer token"'


def test_two_authorization_entries_are_malformed(server: Server, tokens: Tokens) -> None:
    token = tokens.issue().token
    metadata = (("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}"))
    unary = server.channel.unary_unary(path("Unary"))

    error = refusal(lambda: unary(b"hi", metadata=metadata, timeout=TIMEOUT))

    assert_refused(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MALFORMED", MALFORMED)
    assert server.calls.count == 0


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_scheme_is_case_insensitive(server: Server, tokens: Tokens, scheme: str) -> None:
    metadata = (("authorization", f"{scheme} {tokens.issue().token}"),)
    unary = server.channel.unary_unary(path("Unary"))
    assert unary(b"hi", metadata=metadata, timeout=TIMEOUT) == b"alice|echo.use"


@pytest.mark.parametrize("scheme", ["Basic", "Token"])
def test_other_schemes_are_malformed(server: Server, tokens: Tokens, scheme: str) -> None:
    metadata = (("authorization", f"{scheme} {tokens.issue().token}"),)
    unary = server.channel.unary_unary(path("Unary"))
    error = refusal(lambda: unary(b"hi", metadata=metadata, timeout=TIMEOUT))
    assert_refused(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MALFORMED", MALFORMED)


def test_authorization_bin_is_no_credential(server: Server, tokens: Tokens) -> None:
    metadata = (("authorization-bin", f"Bearer {tokens.issue().token}".encode()),)
    unary = server.channel.unary_unary(path("Unary"))
    error = refusal(lambda: unary(b"hi", metadata=metadata, timeout=TIMEOUT))
    assert_refused(error, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING", "Bearer")


def test_access_token_call_credentials_are_accepted(server: Server, tokens: Tokens) -> None:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(),
        grpc.access_token_call_credentials(tokens.issue().token),
    )
    with grpc.secure_channel(server.endpoints.local_target, credentials) as channel:
        unary = channel.unary_unary(path("Unary"))
        assert unary(b"hi", timeout=TIMEOUT) == b"alice|echo.use"
        stream = channel.stream_stream(path("BidiStream"))
        assert list(stream(iter([b"x"]), timeout=TIMEOUT)) == [b"alice|echo.use|x"]
