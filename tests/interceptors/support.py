"""Helpers of the interceptor tests: Alice's tokens, what the handler saw, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import grpc
import grpc.aio

from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.testing import SERVICE, Answer, Echo, TestIssuer
from bearer_grpc.testing import assert_refused as assert_reason
from tests.harness import ECHO_AUDIENCE, ECHO_SCOPE

ISSUER: Final = "https://tokens.test"
START: Final = 1_800_000_000.0
TIMEOUT: Final = 10
ALICE: Final = ("alice", (ECHO_SCOPE,))
"""What the handler sees of a default :func:`alice` token: subject and scopes."""
NOBODY: Final = (None, ())
"""What the handler sees where no caller is bound."""


def alice(issuer: TestIssuer, **claims: Any) -> IssuedToken:
    """A token of ``alice`` (client ``echo-client``) for Echo's audience and scope, valid
    for 300 s; ``claims`` override (see ``TestIssuer.issue``). Pass ``issuer.impostor()``
    for a token whose signature does not match the trusted key."""
    defaults: dict[str, Any] = {
        "subject": "alice",
        "client_id": "echo-client",
        "scopes": (ECHO_SCOPE,),
        "audience": ECHO_AUDIENCE,
        "lifetime": 300,
    }
    return issuer.issue(**{**defaults, **claims})


def who(response: bytes | Answer) -> tuple[str | None, tuple[str, ...]]:
    """Subject and scopes the handler saw, from a response or an answer."""
    answer = response if isinstance(response, Answer) else Answer.parse(response)
    return answer.subject, answer.scopes


def assert_refused(
    error: grpc.RpcError,
    code: grpc.StatusCode,
    reason: str,
    challenge: str,
    required_scopes: str | None = None,
) -> None:
    """Code, ErrorInfo reason/domain and www-authenticate trailer of a refusal."""
    info = assert_reason(error, code, reason)
    if required_scopes is not None:
        assert dict(info.metadata) == {"required_scopes": required_scopes}
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    assert trailers["www-authenticate"] == challenge


def challenge(description: str) -> str:
    """The RFC 6750 challenge of an invalid token."""
    return f'Bearer error="invalid_token", error_description="{description}"'


def aio_extras(echo: Echo) -> grpc.GenericRpcHandler:
    """Two more Echo methods in shapes grpc.aio also dispatches: ``BidiReadWrite`` (the
    ``context.read()``/``context.write()`` API) and ``SyncUnary`` (a plain ``def``)."""

    async def bidi_read_write(requests: AsyncIterator[bytes], context: Any) -> None:
        echo.enter(context)
        while (request := await context.read()) is not grpc.aio.EOF:
            await context.write(echo.reply(context, request))

    def sync_unary(request: bytes, context: Any) -> bytes:
        echo.enter(context)
        return echo.reply(context, request)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "BidiReadWrite": grpc.stream_stream_rpc_method_handler(bidi_read_write),
            "SyncUnary": grpc.unary_unary_rpc_method_handler(sync_unary),
        },
    )
