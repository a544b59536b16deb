"""Talking to a TokenService as its callers do: users with a known password, the three
grant requests, VerifyToken with a deadline, and the error of a call that must fail."""

from __future__ import annotations

import functools
import time
from typing import Any, Final

import grpc
import pytest

from bearer_grpc.core.secrets import hash_password
from bearer_grpc.store import Account, AccountKind
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc
from tests.harness.service import RunningService

PASSWORD: Final = "correct horse battery staple"
"""The password of every user :func:`add_user` creates."""
USER_SCOPES: Final = ("orders.read", "orders.write")
USER_AUDIENCES: Final = ("orders", "billing")


@functools.cache
def _password_hash() -> str:
    # One scrypt hash per session: users are created with it directly in the store.
    return hash_password(PASSWORD)


def add_user(
    service: RunningService,
    name: str = "alice",
    *,
    scopes: tuple[str, ...] = USER_SCOPES,
    audiences: tuple[str, ...] = USER_AUDIENCES,
) -> str:
    """Create a user with password :data:`PASSWORD`; returns the name.

    The scrypt hash is computed once per session and written to the store directly
    (``Admin.add_user`` would hash again, ~0.4 s each).
    """
    service.store.add_account(
        Account(
            name=name,
            kind=AccountKind.USER,
            credential_hash=_password_hash(),
            scopes=scopes,
            audiences=audiences,
            created_at=int(time.time()),
        )
    )
    return name


def password_request(
    username: str = "alice", password: str = PASSWORD, **request: Any
) -> pb.IssueTokenRequest:
    """An IssueTokenRequest with the password grant."""
    return pb.IssueTokenRequest(
        password=pb.PasswordGrant(username=username, password=password), **request
    )


def refresh_request(refresh_token: str, **request: Any) -> pb.IssueTokenRequest:
    """An IssueTokenRequest with the refresh_token grant."""
    return pb.IssueTokenRequest(
        refresh_token=pb.RefreshTokenGrant(refresh_token=refresh_token), **request
    )


def client_request(client_id: str, client_secret: str, **request: Any) -> pb.IssueTokenRequest:
    """An IssueTokenRequest with the client_credentials grant."""
    return pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(
            client_id=client_id, client_secret=client_secret
        ),
        **request,
    )


def verify(
    stub: pb_grpc.TokenServiceStub, token: str, audience: str = "orders", **request: Any
) -> pb.VerifyTokenResponse:
    """VerifyToken with a deadline."""
    response: pb.VerifyTokenResponse = stub.VerifyToken(
        pb.VerifyTokenRequest(token=token, audience=audience, **request), timeout=10
    )
    return response


def call_error(fn: Any, request: Any, **kwargs: Any) -> grpc.RpcError:
    """Call a unary stub method expecting it to fail; return the error."""
    kwargs.setdefault("timeout", 10)
    with pytest.raises(grpc.RpcError) as info:
        fn(request, **kwargs)
    return info.value
