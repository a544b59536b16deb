"""The two :class:`~bearer_grpc.cli._remote.AdminBackend` adapters: on a store, or remote.

:class:`LocalAdmin` works on the store (``--data-dir``/``--store``, actor "local CLI") and
:class:`RemoteAdmin` through the AdminService (``--target``, actor the admin token's
subject).

Both return the same rows for the same state, so the commands print the same either
way. Heavy modules are imported inside the methods: this module is loaded only when an
admin command runs, and even then only what that command needs is imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bearer_grpc.cli._remote import (
    TIMEOUT_SECONDS,
    Row,
    account_row,
    event_row,
    pages,
    translated,
)
from bearer_grpc.core.errors import NotFound

if TYPE_CHECKING:
    import grpc

    from bearer_grpc.core.keys import KeyEncryptionKey
    from bearer_grpc.service.admin import Admin
    from bearer_grpc.v1 import admin_service_pb2 as pb
    from bearer_grpc.v1 import admin_service_pb2_grpc as pb_grpc


def _messages() -> Any:
    from bearer_grpc.v1 import admin_service_pb2

    return admin_service_pb2


class LocalAdmin:
    """The admin commands on the store itself.

    Args:
        admin: Operator actions on the store.
        close: Closes the store.
        kek: Reads the key-encryption key new keys are sealed with (or None), when one
            is staged.
    """

    def __init__(
        self,
        admin: Admin,
        close: Callable[[], None],
        kek: Callable[[], KeyEncryptionKey | None],
    ) -> None:
        self._admin = admin
        self._close = close
        self._kek = kek

    def add_client(
        self, name: str, scopes: list[str], audiences: list[str], certificate_bound: bool
    ) -> tuple[str, str]:
        """Create a client: its id and its secret."""
        new = self._admin.add_client(
            name, scopes=scopes, audiences=audiences, certificate_bound=certificate_bound
        )
        return new.client_id, new.client_secret

    def add_user(self, name: str, password: str, scopes: list[str], audiences: list[str]) -> None:
        """Create a user."""
        self._admin.add_user(name, password, scopes=scopes, audiences=audiences)

    def accounts(self, kind: str) -> list[Row]:
        """Clients or users, by name."""
        from bearer_grpc.store import AccountKind

        return [
            account_row(a.name, a.scopes, a.audiences, a.created_at, a.certificate_bound)
            for a in self._admin.accounts(AccountKind(kind))
        ]

    def update_client(self, name: str, scopes: list[str], audiences: list[str]) -> Row:
        """Replace a client's scopes and audiences."""
        a = self._admin.update_client(name, scopes=scopes, audiences=audiences)
        return account_row(a.name, a.scopes, a.audiences, a.created_at, a.certificate_bound)

    def rotate_secret(self, name: str, old_secret_valid: int) -> tuple[str, int]:
        """A new secret, and until when the old one works."""
        new, client = self._admin.rotate_secret(name, old_secret_valid=old_secret_valid)
        return new.client_secret, client.previous_valid_until

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password."""
        self._admin.set_password(name, password)

    def revoke_subject(self, name: str) -> int:
        """Revoke every token of a subject."""
        return self._admin.revoke_subject(name).not_before

    def remove(self, name: str, kind: str) -> None:
        """Delete a client or user."""
        from bearer_grpc.store import AccountKind

        self._admin.remove(name, AccountKind(kind))

    def key_rows(self) -> list[Row]:
        """Every key with its state."""
        return [
            {"kid": r.kid, "alg": r.alg, "state": state.value, "not_before": r.not_before}
            for r, state in self._admin.key_states()
        ]

    def rotate_key(self, algorithm: str, delay: int) -> Row:
        """Stage a key."""
        from bearer_grpc.core.keys import ALGORITHMS

        chosen = next(a for a in ALGORITHMS if a == algorithm)
        record = self._admin.rotate_key(algorithm=chosen, delay=delay, kek=self._kek())
        return {"kid": record.kid, "alg": record.alg, "not_before": record.not_before}

    def withdraw_key(self, kid: str) -> str:
        """Withdraw a staged key."""
        return self._admin.withdraw_key(kid).kid

    def audit_events(self, limit: int) -> list[Row]:
        """The newest audit events."""
        return [
            event_row(e.sequence, e.at, e.actor, e.action, e.target, dict(e.detail))
            for e in self._admin.audit_events(limit)
        ]

    def close(self) -> None:
        """Close the store."""
        self._close()


class RemoteAdmin:
    """The admin commands through a server's AdminService.

    Args:
        channel: The channel to the server (closed by :meth:`close`).
        stub: The AdminService stub on it.
        token: The admin access token every call carries (never printed).
    """

    def __init__(self, channel: grpc.Channel, stub: pb_grpc.AdminServiceStub, token: str) -> None:
        self._channel = channel
        self._stub = stub
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __repr__(self) -> str:
        return "RemoteAdmin(<token hidden>)"

    def _call(self, method: str, request: Any) -> Any:
        rpc = getattr(self._stub, method)
        return translated(lambda: rpc(request, timeout=TIMEOUT_SECONDS, metadata=self._metadata))

    def add_client(
        self, name: str, scopes: list[str], audiences: list[str], certificate_bound: bool
    ) -> tuple[str, str]:
        """Create a client: its id and its secret."""
        request = _messages().CreateClientRequest(
            name=name, scopes=scopes, audiences=audiences, certificate_bound=certificate_bound
        )
        response = self._call("CreateClient", request)
        return response.client.name, response.client_secret

    def add_user(self, name: str, password: str, scopes: list[str], audiences: list[str]) -> None:
        """Create a user."""
        request = _messages().CreateUserRequest(
            name=name, password=password, scopes=scopes, audiences=audiences
        )
        self._call("CreateUser", request)

    def accounts(self, kind: str) -> list[Row]:
        """Clients or users, by name."""
        pb = _messages()
        clients = kind == "client"

        def fetch(token: str) -> tuple[list[Any], str]:
            if clients:
                page = self._call("ListClients", pb.ListClientsRequest(page_token=token))
                return list(page.clients), page.next_page_token
            page = self._call("ListUsers", pb.ListUsersRequest(page_token=token))
            return list(page.users), page.next_page_token

        return [
            account_row(
                a.name,
                a.scopes,
                a.audiences,
                a.created_at,
                clients and a.certificate_bound,
            )
            for a in pages(fetch)
        ]

    def update_client(self, name: str, scopes: list[str], audiences: list[str]) -> Row:
        """Replace a client's scopes and audiences."""
        request = _messages().UpdateClientRequest(name=name, scopes=scopes, audiences=audiences)
        a: pb.Client = self._call("UpdateClient", request).client
        return account_row(a.name, a.scopes, a.audiences, a.created_at, a.certificate_bound)

    def rotate_secret(self, name: str, old_secret_valid: int) -> tuple[str, int]:
        """A new secret, and until when the old one works."""
        request = _messages().RotateClientSecretRequest(
            name=name, old_secret_valid_seconds=old_secret_valid
        )
        response = self._call("RotateClientSecret", request)
        return response.client_secret, response.client.previous_secret_valid_until

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password."""
        request = _messages().SetUserPasswordRequest(name=name, password=password)
        self._call("SetUserPassword", request)

    def revoke_subject(self, name: str) -> int:
        """Revoke every token of a subject."""
        response = self._call("RevokeSubject", _messages().RevokeSubjectRequest(name=name))
        not_before: int = response.revocation.not_before
        return not_before

    def remove(self, name: str, kind: str) -> None:
        """Delete a client or user (NotFound, as on the store, if there is none)."""
        pb = _messages()
        if kind == "client":
            deleted = self._call("DeleteClient", pb.DeleteClientRequest(name=name)).deleted
        else:
            deleted = self._call("DeleteUser", pb.DeleteUserRequest(name=name)).deleted
        if not deleted:
            raise NotFound(f"no {kind} named {name!r}")

    def key_rows(self) -> list[Row]:
        """Every key with its state."""
        pb = _messages()

        def fetch(token: str) -> tuple[list[Any], str]:
            page = self._call("ListKeys", pb.ListKeysRequest(page_token=token))
            return list(page.keys), page.next_page_token

        return [
            {"kid": k.kid, "alg": k.alg, "state": k.state, "not_before": k.not_before}
            for k in pages(fetch)
        ]

    def rotate_key(self, algorithm: str, delay: int) -> Row:
        """Stage a key."""
        request = _messages().RotateKeyRequest(algorithm=algorithm, delay_seconds=delay)
        key = self._call("RotateKey", request).key
        return {"kid": key.kid, "alg": key.alg, "not_before": key.not_before}

    def withdraw_key(self, kid: str) -> str:
        """Withdraw a staged key."""
        withdrawn: str = self._call("WithdrawKey", _messages().WithdrawKeyRequest(kid=kid)).key.kid
        return withdrawn

    def audit_events(self, limit: int) -> list[Row]:
        """The newest audit events."""
        pb = _messages()
        rows: list[Row] = []
        token = ""
        while len(rows) < limit:
            size = min(limit - len(rows), 1000)
            request = pb.ListAuditEventsRequest(page_size=size, page_token=token)
            page = self._call("ListAuditEvents", request)
            rows += [
                event_row(
                    e.sequence, e.time, e.actor, e.action, e.target, json.loads(e.detail_json)
                )
                for e in page.events
            ]
            token = page.next_page_token
            if not token:
                break
        return rows

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()
