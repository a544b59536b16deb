"""Finding 1: a password login in flight during ``users remove`` outlives the account.

The grant read the account, spent ~0.4 s in scrypt, then wrote its refresh token without
looking again; re-created under the same name, the new account inherited the orphan
refresh token for good. Now every grant confirms, in the transaction that commits it and
ordered against removals, that the account it read still exists with the same id; and a
removal revokes every token of the name issued until then.

Both backends; the in-flight moment is pinned by a real store that pauses right after the
grant read the account (fault injection), and the race is also run with many logins at
once and no pause at all.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from bearer_grpc.service.admin import Admin
from bearer_grpc.service.settings import ServiceSettings
from bearer_grpc.store import AccountKind, open_store
from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import password_request, refresh_request, running_on, verify
from tests.stolen._support import PausingStore, grpc_code

OLD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different horse entirely 42"
SCOPES = ("orders.read",)
AUDIENCES = ("orders",)


@pytest.mark.slow
def test_finding_1_login_in_flight_during_users_remove_does_not_outlive_the_account(
    backend_url: str,
) -> None:
    paused = PausingStore(open_store(backend_url), "alice")
    admin_store = open_store(backend_url)  # the CLI's own handle on the store
    admin = Admin(admin_store)
    try:
        admin.add_user("alice", OLD_PASSWORD, scopes=SCOPES, audiences=AUDIENCES)
        with running_on(paused) as service, ThreadPoolExecutor(1) as pool:
            stub = service.stub()
            login = pool.submit(
                lambda: stub.IssueToken(password_request("alice", OLD_PASSWORD), timeout=30)
            )
            assert paused.reached.wait(10)  # the grant holds the old account: in flight
            admin.remove("alice", AccountKind.USER)
            admin.add_user("alice", OLD_PASSWORD, scopes=SCOPES, audiences=AUDIENCES)
            paused.release.set()
            assert grpc_code(login.result) == grpc.StatusCode.UNAUTHENTICATED

            # The new account starts clean: its own login and refresh work, and it has
            # exactly that one family.
            fresh = stub.IssueToken(password_request("alice", OLD_PASSWORD), timeout=30)
            assert verify(stub, fresh.access_token).active
            assert stub.IssueToken(refresh_request(fresh.refresh_token), timeout=10)
            current = admin_store.get_account("alice", AccountKind.USER)
            assert current is not None
            assert _families_of(backend_url, current.id) == 1
    finally:
        admin_store.close()


@pytest.mark.slow
def test_finding_1_logins_racing_users_remove_never_outlive_the_account(
    backend_url: str,
) -> None:
    """Many logins with the old password while the account is removed and created again
    with another: whatever each login got, nothing of it works afterwards."""
    logins = 8
    settings = ServiceSettings(password_per_peer=logins, sync_interval=0.1)
    racing = PausingStore(open_store(backend_url), "alice", hold=False)
    admin_store = open_store(backend_url)
    admin = Admin(admin_store)
    try:
        admin.add_user("alice", OLD_PASSWORD, scopes=SCOPES, audiences=AUDIENCES)
        with (
            running_on(racing, settings=settings) as service,
            ThreadPoolExecutor(logins) as pool,
        ):
            stub = service.stub()

            def login() -> pb.IssueTokenResponse | grpc.StatusCode:
                try:
                    request = password_request("alice", OLD_PASSWORD)
                    response: pb.IssueTokenResponse = stub.IssueToken(request, timeout=60)
                except grpc.RpcError as err:
                    return err.code()  # type: ignore[attr-defined, no-any-return]
                return response

            outcomes = [pool.submit(login) for _ in range(logins)]
            assert racing.reached.wait(10)  # the first login read the old account
            admin.remove("alice", AccountKind.USER)
            admin.add_user("alice", NEW_PASSWORD, scopes=SCOPES, audiences=AUDIENCES)
            results = [outcome.result() for outcome in outcomes]

            issued = [r for r in results if isinstance(r, pb.IssueTokenResponse)]
            refused = {r for r in results if isinstance(r, grpc.StatusCode)}
            assert refused <= {
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            }
            for response in issued:  # every one of the old account's tokens is dead
                assert verify(stub, response.access_token).reason == "TOKEN_REVOKED"
                refresh = refresh_request(response.refresh_token)
                assert grpc_code(lambda r=refresh: stub.IssueToken(r, timeout=10)) == (
                    grpc.StatusCode.UNAUTHENTICATED
                )
            current = admin_store.get_account("alice", AccountKind.USER)
            assert current is not None and _families_of(backend_url, current.id) == 0
    finally:
        admin_store.close()


def _families_of(url: str, account_id: str) -> int:
    """How many refresh families the account of this id has (looking behind the store)."""
    from sqlalchemy import func, select

    from bearer_grpc.store._schema import refresh_families

    store = open_store(url)
    try:
        query = select(func.count()).where(refresh_families.c.account_id == account_id)
        with store._dialect.read() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        store.close()
