"""The AdminService over gRPC (``grpc.aio``): translation only.

The rules are :class:`~bearer_grpc.service.admin.Admin`'s, run for the verified caller, who
becomes the actor of every audit event; who may call is decided by the interceptor
(:mod:`bearer_grpc.service.admin_auth`).

Store work runs in worker threads. Revocations are read into the authority's log before
the call returns, so this replica refuses the revoked tokens at once, and its watchers
are woken; the other replicas learn of them through the store's notifications. No
secret leaves the service except a client's new secret, once, in CreateClient and
RotateClientSecret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import grpc

from bearer_grpc._server.principal import current_principal
from bearer_grpc._status import abort_async, status_code
from bearer_grpc.core.errors import AuthError, InvalidRequest, NotFound, ServiceError
from bearer_grpc.core.keys import ALGORITHMS
from bearer_grpc.core.secrets import MAX_SECRET_LENGTH
from bearer_grpc.service.admin import Admin, KeyState
from bearer_grpc.service.admin_messages import (
    client_message,
    event_message,
    key_message,
    key_position,
    revocation_message,
    user_message,
)
from bearer_grpc.service.admin_paging import Pages
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.issuing import MAX_ID_LENGTH, require
from bearer_grpc.service.revocations import RevocationNotifier
from bearer_grpc.service.revoking import store_errors
from bearer_grpc.store import AccountKind
from bearer_grpc.v1 import admin_service_pb2 as pb
from bearer_grpc.v1 import admin_service_pb2_grpc as pb_grpc

access_log = logging.getLogger("bearer_grpc.access")
log = logging.getLogger("bearer_grpc.service")

Context = grpc.aio.ServicerContext[Any, Any]
_R = TypeVar("_R")
_KEY_LIST: Final = "keys"


def _name(name: str) -> str:
    require(name, "name", MAX_ID_LENGTH)
    return name


class AdminServiceServicer(pb_grpc.AdminServiceServicer):
    """Serves the AdminService for one :class:`TokenAuthority`.

    Args:
        authority: The running authority (its store, clock, key ring and revocations).
        notifier: Wakes this server's revocation watchers after a revocation.
    """

    def __init__(self, authority: TokenAuthority, notifier: RevocationNotifier) -> None:
        self._authority = authority
        self._notifier = notifier
        self._pages: Pages | None = None

    def _paging(self) -> Pages:
        if self._pages is None:
            self._pages = Pages.of_store(self._authority.store)
        return self._pages

    async def _call(
        self,
        method: str,
        context: Context,
        work: Callable[[Admin], _R],
        *,
        revokes: bool = False,
    ) -> _R:
        """Run ``work`` for the verified caller in a worker thread.

        Errors become statuses, and the call gets an access line.
        """
        started, peer = time.perf_counter(), context.peer()
        authority = self._authority
        admin = Admin(
            authority.store,
            clock=authority.clock,
            actor=current_principal().subject,
            keys=authority.keys,
        )

        def run() -> _R:
            with store_errors():
                result = work(admin)
                if revokes:
                    authority.sync()  # this replica refuses the revoked tokens at once
                return result

        try:
            result = await asyncio.to_thread(run)
        except (AuthError, ServiceError) as err:
            self._log(method, peer, started, status_code(err))
            await abort_async(context, err)
        except Exception:
            self._log(method, peer, started, grpc.StatusCode.INTERNAL)
            log.exception("internal error", extra={"method": method})
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise
        if revokes:
            self._notifier.notify(authority.revocations.cursor)
        self._log(method, peer, started, grpc.StatusCode.OK)
        return result

    @staticmethod
    def _log(method: str, peer: str, started: float, code: grpc.StatusCode) -> None:
        duration = round((time.perf_counter() - started) * 1000, 3)
        access_log.info(
            "call",
            extra={
                "method": f"AdminService/{method}",
                "peer": peer,
                "code": code.name,
                "duration_ms": duration,
            },
        )

    # -- clients -----------------------------------------------------------------------
    async def CreateClient(
        self, request: pb.CreateClientRequest, context: Context
    ) -> pb.CreateClientResponse:
        """Create a client; its secret is in the answer, once."""

        def work(admin: Admin) -> pb.CreateClientResponse:
            new = admin.add_client(
                _name(request.name),
                scopes=list(request.scopes),
                audiences=list(request.audiences),
                certificate_bound=request.certificate_bound,
            )
            client = admin.account(new.client_id, AccountKind.CLIENT)
            return pb.CreateClientResponse(
                client=client_message(client), client_secret=new.client_secret
            )

        return await self._call("CreateClient", context, work)

    async def ListClients(
        self, request: pb.ListClientsRequest, context: Context
    ) -> pb.ListClientsResponse:
        """A page of clients, by name."""

        def work(admin: Admin) -> pb.ListClientsResponse:
            page, token = self._paging().cut(
                "clients",
                admin.accounts(AccountKind.CLIENT),
                lambda account: account.name,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return pb.ListClientsResponse(
                clients=[client_message(a) for a in page], next_page_token=token
            )

        return await self._call("ListClients", context, work)

    async def GetClient(
        self, request: pb.GetClientRequest, context: Context
    ) -> pb.GetClientResponse:
        """One client."""

        def work(admin: Admin) -> pb.GetClientResponse:
            client = admin.account(_name(request.name), AccountKind.CLIENT)
            return pb.GetClientResponse(client=client_message(client))

        return await self._call("GetClient", context, work)

    async def UpdateClient(
        self, request: pb.UpdateClientRequest, context: Context
    ) -> pb.UpdateClientResponse:
        """Replace a client's scopes and audiences."""

        def work(admin: Admin) -> pb.UpdateClientResponse:
            client = admin.update_client(
                _name(request.name), scopes=list(request.scopes), audiences=list(request.audiences)
            )
            return pb.UpdateClientResponse(client=client_message(client))

        return await self._call("UpdateClient", context, work)

    async def RotateClientSecret(
        self, request: pb.RotateClientSecretRequest, context: Context
    ) -> pb.RotateClientSecretResponse:
        """A new secret for a client, in the answer once.

        The old one works until the deadline asked for.
        """

        def work(admin: Admin) -> pb.RotateClientSecretResponse:
            new, client = admin.rotate_secret(
                _name(request.name), old_secret_valid=request.old_secret_valid_seconds
            )
            return pb.RotateClientSecretResponse(
                client=client_message(client), client_secret=new.client_secret
            )

        return await self._call("RotateClientSecret", context, work)

    async def DeleteClient(
        self, request: pb.DeleteClientRequest, context: Context
    ) -> pb.DeleteClientResponse:
        """Delete a client and revoke its tokens; OK if there is none."""

        def work(admin: Admin) -> pb.DeleteClientResponse:
            try:
                admin.remove(_name(request.name), AccountKind.CLIENT)
            except NotFound:
                return pb.DeleteClientResponse(deleted=False)
            return pb.DeleteClientResponse(deleted=True)

        return await self._call("DeleteClient", context, work, revokes=True)

    # -- users ---------------------------------------------------------------------------
    async def CreateUser(
        self, request: pb.CreateUserRequest, context: Context
    ) -> pb.CreateUserResponse:
        """Create a user with a password."""

        def work(admin: Admin) -> pb.CreateUserResponse:
            name = _name(request.name)
            require(request.password, "password", MAX_SECRET_LENGTH, secret=True)
            admin.add_user(
                name,
                request.password,
                scopes=list(request.scopes),
                audiences=list(request.audiences),
            )
            return pb.CreateUserResponse(user=user_message(admin.account(name, AccountKind.USER)))

        return await self._call("CreateUser", context, work)

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        """A page of users, by name."""

        def work(admin: Admin) -> pb.ListUsersResponse:
            page, token = self._paging().cut(
                "users",
                admin.accounts(AccountKind.USER),
                lambda account: account.name,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return pb.ListUsersResponse(
                users=[user_message(a) for a in page], next_page_token=token
            )

        return await self._call("ListUsers", context, work)

    async def SetUserPassword(
        self, request: pb.SetUserPasswordRequest, context: Context
    ) -> pb.SetUserPasswordResponse:
        """Replace a user's password."""

        def work(admin: Admin) -> pb.SetUserPasswordResponse:
            name = _name(request.name)
            require(request.password, "password", MAX_SECRET_LENGTH, secret=True)
            admin.set_password(name, request.password)
            return pb.SetUserPasswordResponse()

        return await self._call("SetUserPassword", context, work)

    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Context
    ) -> pb.DeleteUserResponse:
        """Delete a user and revoke its tokens; OK if there is none."""

        def work(admin: Admin) -> pb.DeleteUserResponse:
            try:
                admin.remove(_name(request.name), AccountKind.USER)
            except NotFound:
                return pb.DeleteUserResponse(deleted=False)
            return pb.DeleteUserResponse(deleted=True)

        return await self._call("DeleteUser", context, work, revokes=True)

    # -- keys ----------------------------------------------------------------------------
    async def ListKeys(self, request: pb.ListKeysRequest, context: Context) -> pb.ListKeysResponse:
        """A page of signing keys, oldest first, with their states."""

        def work(admin: Admin) -> pb.ListKeysResponse:
            page, token = self._paging().cut(
                _KEY_LIST,
                admin.key_states(),
                key_position,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return pb.ListKeysResponse(
                keys=[key_message(r, s) for r, s in page], next_page_token=token
            )

        return await self._call("ListKeys", context, work)

    async def RotateKey(
        self, request: pb.RotateKeyRequest, context: Context
    ) -> pb.RotateKeyResponse:
        """Stage a new signing key."""

        def work(admin: Admin) -> pb.RotateKeyResponse:
            algorithm = request.algorithm or "ES256"
            if algorithm not in ALGORITHMS:
                raise InvalidRequest(f"algorithm must be one of {', '.join(ALGORITHMS)}")
            record = admin.rotate_key(algorithm=algorithm, delay=request.delay_seconds, kek=None)
            return pb.RotateKeyResponse(key=key_message(record, KeyState.STAGED))

        return await self._call("RotateKey", context, work)

    async def WithdrawKey(
        self, request: pb.WithdrawKeyRequest, context: Context
    ) -> pb.WithdrawKeyResponse:
        """Withdraw a staged key before it signs."""

        def work(admin: Admin) -> pb.WithdrawKeyResponse:
            require(request.kid, "kid", MAX_ID_LENGTH)
            record = admin.withdraw_key(request.kid)
            return pb.WithdrawKeyResponse(key=key_message(record, KeyState.STAGED))

        return await self._call("WithdrawKey", context, work)

    # -- revocations and the audit trail -------------------------------------------------
    async def ListRevocations(
        self, request: pb.ListRevocationsRequest, context: Context
    ) -> pb.ListRevocationsResponse:
        """A page of the revocations still kept, newest first."""

        def work(admin: Admin) -> pb.ListRevocationsResponse:
            pages = self._paging()
            size, before = pages.below("revocations", request.page_size, request.page_token)
            found = self._authority.store.recent_revocations(before=before, limit=size + 1)
            page, token = pages.newest_first("revocations", found, size, lambda r: r.sequence)
            return pb.ListRevocationsResponse(
                revocations=[revocation_message(r) for r in page], next_page_token=token
            )

        return await self._call("ListRevocations", context, work)

    async def RevokeTokenId(
        self, request: pb.RevokeTokenIdRequest, context: Context
    ) -> pb.RevokeTokenIdResponse:
        """Revoke one access token by its jti (idempotent)."""

        def work(admin: Admin) -> pb.RevokeTokenIdResponse:
            revocation = admin.revoke_token_id(request.token_id)
            return pb.RevokeTokenIdResponse(revocation=revocation_message(revocation))

        return await self._call("RevokeTokenId", context, work, revokes=True)

    async def RevokeSubject(
        self, request: pb.RevokeSubjectRequest, context: Context
    ) -> pb.RevokeSubjectResponse:
        """Revoke every token of a client or user issued until now."""

        def work(admin: Admin) -> pb.RevokeSubjectResponse:
            revocation = admin.revoke_subject(_name(request.name))
            return pb.RevokeSubjectResponse(revocation=revocation_message(revocation))

        return await self._call("RevokeSubject", context, work, revokes=True)

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        """A page of the audit trail, newest first."""

        def work(admin: Admin) -> pb.ListAuditEventsResponse:
            pages = self._paging()
            size, before = pages.below("audit", request.page_size, request.page_token)
            found = self._authority.store.audit_events(before=before, limit=size + 1)
            page, token = pages.newest_first("audit", found, size, lambda e: e.sequence)
            return pb.ListAuditEventsResponse(
                events=[event_message(e) for e in page], next_page_token=token
            )

        return await self._call("ListAuditEvents", context, work)


def add_to_server(servicer: AdminServiceServicer, server: grpc.aio.Server) -> None:
    """Register the servicer on an aio server."""
    pb_grpc.add_AdminServiceServicer_to_server(servicer, server)
