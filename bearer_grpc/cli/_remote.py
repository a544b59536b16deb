"""The admin commands through a running server's AdminService or on the store itself.

Both ways (``--target`` for the AdminService) share one interface, :class:`AdminBackend`,
so that both print the same.

Remote calls authenticate with an admin access token from ``BEARER_GRPC_ADMIN_TOKEN``,
or get one with the client credentials in ``BEARER_GRPC_CLIENT_ID`` and
``BEARER_GRPC_CLIENT_SECRET`` (IssueToken for audience ``bearer-grpc``). Secrets never
come from flags. Heavy modules (grpc, the store, the service) are imported when a command
runs, never when this module is.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from bearer_grpc.cli._connect import add_tls_options, open_channel
from bearer_grpc.cli._options import ENV_PREFIX
from bearer_grpc.core.errors import Conflict, InvalidRequest, NotFound

if TYPE_CHECKING:
    import grpc

    from bearer_grpc.core.keys import KeyEncryptionKey
    from bearer_grpc.service.admin import Admin

TIMEOUT_SECONDS: Final = 30.0
ADMIN_TOKEN_VARIABLE: Final = ENV_PREFIX + "ADMIN_TOKEN"
CLIENT_ID_VARIABLE: Final = ENV_PREFIX + "CLIENT_ID"
CLIENT_SECRET_VARIABLE: Final = ENV_PREFIX + "CLIENT_SECRET"
_T = TypeVar("_T")

Row = dict[str, Any]


TARGET_VARIABLE: Final = ENV_PREFIX + "ADMIN_TARGET"
"""Where the admin commands' ``--target`` defaults from: not ``BEARER_GRPC_TARGET``,
which the ``token`` commands read, so that setting that one never turns a command meant
for the store into a remote one."""


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """``--target`` and the client-side TLS options, as the ``token`` commands have them."""
    parser.add_argument(
        "--target",
        default=os.environ.get(TARGET_VARIABLE),
        help="use the AdminService of the server at HOST:PORT instead of the store (an admin "
        f"token in {ADMIN_TOKEN_VARIABLE}, or admin client credentials in "
        f"{CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}) (env {TARGET_VARIABLE})",
    )
    add_tls_options(parser)


class AdminBackend(Protocol):
    """What the admin commands do, on the store or through the AdminService.

    Results are plain rows, printed alike.
    """

    def add_client(
        self, name: str, scopes: list[str], audiences: list[str], certificate_bound: bool
    ) -> tuple[str, str]:
        """Create a client: its id and its secret."""
        ...

    def add_user(self, name: str, password: str, scopes: list[str], audiences: list[str]) -> None:
        """Create a user."""
        ...

    def accounts(self, kind: str) -> list[Row]:
        """Clients or users, by name."""
        ...

    def update_client(self, name: str, scopes: list[str], audiences: list[str]) -> Row:
        """Replace a client's scopes and audiences; the client afterwards."""
        ...

    def rotate_secret(self, name: str, old_secret_valid: int) -> tuple[str, int]:
        """A new secret for a client, and until when the old one works (0: no longer)."""
        ...

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password."""
        ...

    def revoke_subject(self, name: str) -> int:
        """Revoke every token of a subject; the not-before written."""
        ...

    def remove(self, name: str, kind: str) -> None:
        """Delete a client or user (NotFound if there is none)."""
        ...

    def key_rows(self) -> list[Row]:
        """Every key: kid, alg, state, not_before."""
        ...

    def rotate_key(self, algorithm: str, delay: int) -> Row:
        """Stage a key: kid, alg, not_before."""
        ...

    def withdraw_key(self, kid: str) -> str:
        """Withdraw a staged key; its kid."""
        ...

    def audit_events(self, limit: int) -> list[Row]:
        """The newest ``limit`` audit events, newest first."""
        ...

    def close(self) -> None:
        """Release the store or the channel."""
        ...


def account_row(
    name: str, scopes: Any, audiences: Any, created_at: int, certificate_bound: bool
) -> Row:
    """How a client or user is printed."""
    row: Row = {
        "name": name,
        "scopes": list(scopes),
        "audiences": list(audiences),
        "created_at": created_at,
    }
    if certificate_bound:
        row["certificate_bound"] = True
    return row


def event_row(
    sequence: int, at: int, actor: str, action: str, target: str, detail: dict[str, Any]
) -> Row:
    """How an audit event is printed."""
    return {
        "sequence": sequence,
        "time": at,
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
    }


def _admin_token(channel: grpc.Channel) -> str:
    """The admin token from the environment, or one issued for the admin client there.

    Raises:
        InvalidRequest: Neither is in the environment.
    """
    token = os.environ.get(ADMIN_TOKEN_VARIABLE)
    if token:
        return token
    client_id = os.environ.get(CLIENT_ID_VARIABLE)
    secret = os.environ.get(CLIENT_SECRET_VARIABLE)
    if not (client_id and secret):
        raise InvalidRequest(
            f"--target needs an admin token in {ADMIN_TOKEN_VARIABLE}, or an admin client's "
            f"credentials in {CLIENT_ID_VARIABLE} and {CLIENT_SECRET_VARIABLE}"
        )
    from bearer_grpc.service.settings import ADMIN_AUDIENCE
    from bearer_grpc.v1 import token_service_pb2 as pb
    from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

    request = pb.IssueTokenRequest(
        client_credentials=pb.ClientCredentialsGrant(client_id=client_id, client_secret=secret),
        audience=ADMIN_AUDIENCE,
    )
    response = pb_grpc.TokenServiceStub(channel).IssueToken(request, timeout=TIMEOUT_SECONDS)
    access: str = response.access_token
    return access


def remote_backend(args: argparse.Namespace) -> AdminBackend:
    """The AdminService at ``--target``, as an :class:`AdminBackend`."""
    from bearer_grpc.cli._remote_admin import RemoteAdmin
    from bearer_grpc.v1 import admin_service_pb2_grpc as admin_grpc

    channel = open_channel(args)
    try:
        token = _admin_token(channel)
    except BaseException:
        channel.close()
        raise
    return RemoteAdmin(channel, admin_grpc.AdminServiceStub(channel), token)


def translated(call: Callable[[], _T]) -> _T:
    """Run an AdminService call, its refusals turned into the store-side commands' errors.

    Its NOT_FOUND, ALREADY_EXISTS and INVALID_ARGUMENT become the errors the store-side
    commands raise, with the server's message.
    """
    import grpc

    try:
        return call()
    except grpc.RpcError as err:
        if not isinstance(err, grpc.Call):
            raise
        errors = {
            grpc.StatusCode.NOT_FOUND: NotFound,
            grpc.StatusCode.ALREADY_EXISTS: Conflict,
            grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
        }
        error = errors.get(err.code())
        if error is None:
            raise
        raise error(err.details() or None) from None


def pages(fetch: Callable[[str], tuple[list[_T], str]]) -> Iterator[_T]:
    """Every item of a paged list: ``fetch(page_token)`` gives a page and the next token."""
    token = ""
    while True:
        items, token = fetch(token)
        yield from items
        if not token:
            return


def local_backend(
    admin: Admin, close: Callable[[], None], kek: Callable[[], KeyEncryptionKey | None]
) -> AdminBackend:
    """The store itself, as an :class:`AdminBackend`.

    ``kek`` is read when a key is staged, and only then.
    """
    from bearer_grpc.cli._remote_admin import LocalAdmin

    return LocalAdmin(admin, close, kek)
