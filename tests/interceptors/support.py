"""Helpers of the interceptor tests: Alice's tokens, what the handler saw, refusals."""

from __future__ import annotations

from typing import Any, Final

from bearer_grpc.core.tokens import IssuedToken
from bearer_grpc.testing import Answer, TestIssuer
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
