"""Helpers of the interceptor tests: tokens, calls of each kind, refusals."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bearer_grpc import Policy
from bearer_grpc._verifier.base import VerifierBase
from bearer_grpc.core.keys import SigningKey
from bearer_grpc.core.tokens import IssuedToken, issue_access_token
from bearer_grpc.testing import FrozenClock
from tests.interceptors.echo import SERVICE, Calls, Endpoints, path

ISSUER = "https://tokens.test"
AUDIENCE = "echo"
START = 1_800_000_000.0
SCOPE = "echo.use"
ADMIN_SCOPE = "echo.admin"
TIMEOUT = 10


def echo_policy(**kwargs: Any) -> Policy:
    """Echo's rules: Public is public, Admin needs echo.admin, the rest echo.use."""
    return Policy(
        public=[path("Public")],
        scopes={f"/{SERVICE}/*": [SCOPE], path("Admin"): [ADMIN_SCOPE]},
        **kwargs,
    )


@dataclass
class Tokens:
    """Issues tokens the servers trust (and some they should not)."""

    key: SigningKey
    clock: FrozenClock

    @property
    def jwks(self) -> dict[str, Any]:
        """The trusted key set."""
        return {"keys": [dict(self.key.jwk)]}

    def issue(
        self,
        *,
        scopes: Iterable[str] = (SCOPE,),
        audience: str = AUDIENCE,
        lifetime: int = 300,
        age: int = 0,
        key: SigningKey | None = None,
    ) -> IssuedToken:
        """A token for ``alice``, issued ``age`` seconds ago."""
        return issue_access_token(
            key or self.key,
            issuer=ISSUER,
            subject="alice",
            audience=audience,
            scopes=scopes,
            client_id="echo-client",
            lifetime=lifetime,
            now=int(self.clock()) - age,
        )

    def forged(self) -> IssuedToken:
        """Signed by another key that claims the trusted key's ``kid``."""
        impostor = dataclasses.replace(SigningKey.generate(), kid=self.key.kid)
        return self.issue(key=impostor)


@dataclass
class Server:
    """One running Echo server and what tests need to reach and steer it."""

    flavour: str
    endpoints: Endpoints
    channel: grpc.Channel
    verifier: VerifierBase
    calls: Calls

    def revoke(self, token: IssuedToken) -> None:
        """Revoke ``token`` at this server's verifier (as WatchRevocations would)."""
        self.verifier.local.revocations.add(token.token_id, token.expires_at)


def bearer(token: IssuedToken | str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token``."""
    value = token if isinstance(token, str) else token.token
    return (("authorization", f"Bearer {value}"),)


def call(channel: grpc.Channel, kind: str, method: str, metadata: Any = None) -> Any:
    """Call ``method`` as an RPC of ``kind``; streamed responses come back as a list."""
    if kind == "unary_unary":
        return channel.unary_unary(method)(b"hi", metadata=metadata, timeout=TIMEOUT)
    if kind == "unary_stream":
        return list(channel.unary_stream(method)(b"hi", metadata=metadata, timeout=TIMEOUT))
    requests = iter([b"a", b"b"])
    if kind == "stream_unary":
        return channel.stream_unary(method)(requests, metadata=metadata, timeout=TIMEOUT)
    return list(channel.stream_stream(method)(requests, metadata=metadata, timeout=TIMEOUT))


def refusal(action: Callable[[], Any]) -> grpc.RpcError:
    """The error ``action`` fails with."""
    with pytest.raises(grpc.RpcError) as failed:
        action()
    return failed.value


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ``google.rpc.ErrorInfo`` in a refusal's rich details."""
    status = rpc_status.from_call(error)
    assert status is not None, "no rich status details"
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def assert_refused(
    error: grpc.RpcError,
    code: grpc.StatusCode,
    reason: str,
    challenge: str,
    required_scopes: str | None = None,
) -> None:
    """Code, ErrorInfo reason/domain and www-authenticate trailer of a refusal."""
    assert error.code() == code, error
    info = error_info(error)
    assert (info.domain, info.reason) == ("bearer-grpc", reason)
    if required_scopes is not None:
        assert dict(info.metadata) == {"required_scopes": required_scopes}
    trailers = dict(error.trailing_metadata() or ())
    assert trailers["www-authenticate"] == challenge


def challenge(description: str) -> str:
    """The RFC 6750 challenge of an invalid token."""
    return f'Bearer error="invalid_token", error_description="{description}"'
