"""Client credentials, blocking and on an event loop: the rule holds whatever is remembered.

On an event loop a client's account is kept in memory after its first grant, and the
confirmations of concurrent grants share one store transaction. These tests change the
store behind the authority's back (as another process would: nothing tells the
authority) and check that every token issued is what the store holds when the grant
commits: a removed client gets none, a rotated secret is seen, narrowed scopes are what
the next token carries. Each runs on both issuing paths and both store backends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from bearer_grpc.core.errors import InvalidGrant, TokenRevoked, Unavailable
from bearer_grpc.service.admin import NewClient
from bearer_grpc.service.client_grants import _Clients
from bearer_grpc.service.grants import ClientCredentialsGrant, Issued
from bearer_grpc.store import (
    Account,
    AccountClaim,
    AccountKind,
    StoreUnavailable,
    open_store,
)
from tests.harness import RunningService, running_on

AUDIENCE = "orders"
GRANTS_AT_ONCE = 32


Issue = Callable[[RunningService, ClientCredentialsGrant], Issued]


def _blocking(service: RunningService, grant: ClientCredentialsGrant) -> Issued:
    return service.authority.issue(grant)


def _on_the_loop(service: RunningService, grant: ClientCredentialsGrant) -> Issued:
    issued: Issued = service.loop.run(service.authority.issue_async(grant))
    return issued


@pytest.fixture(params=[_blocking, _on_the_loop], ids=["blocking", "loop"])
def issue(request: pytest.FixtureRequest) -> Issue:
    """Issue with client credentials through ``TokenAuthority.issue`` or ``issue_async``."""
    chosen: Issue = request.param
    return chosen


def _grant(client: NewClient, secret: str | None = None) -> ClientCredentialsGrant:
    return ClientCredentialsGrant(client.client_id, secret or client.client_secret)


def _refused(service: RunningService, token: str) -> bool:
    """Whether the authority refuses ``token`` as revoked, once it has read the store's log."""
    service.authority.sync()
    try:
        service.authority.verify(token, audience=AUDIENCE)
    except TokenRevoked:
        return True
    return False


def test_a_removed_client_gets_no_token_though_its_account_was_read_before(
    any_service: RunningService, issue: Issue
) -> None:
    client = any_service.add_client()
    first = issue(any_service, _grant(client))  # the account is read (and, on a loop, kept)
    any_service.admin.remove(client.client_id, AccountKind.CLIENT)  # nothing tells the authority

    with pytest.raises(InvalidGrant):
        issue(any_service, _grant(client))
    assert _refused(any_service, first.access.token)


def test_a_rotated_secret_is_seen_though_the_old_account_was_read_before(
    any_service: RunningService, issue: Issue
) -> None:
    client = any_service.add_client()
    issue(any_service, _grant(client))
    rotated, _ = any_service.admin.rotate_secret(client.client_id)

    assert issue(any_service, _grant(client, rotated.client_secret)).access.token
    with pytest.raises(InvalidGrant):
        issue(any_service, _grant(client))  # the old secret stopped at once


def test_narrowed_scopes_are_what_the_next_token_carries(
    any_service: RunningService, issue: Issue
) -> None:
    client = any_service.add_client(scopes=("orders.read", "orders.write"))
    assert issue(any_service, _grant(client)).scopes == ("orders.read", "orders.write")
    any_service.admin.update_client(
        client.client_id, scopes=("orders.read",), audiences=(AUDIENCE,)
    )

    issued = issue(any_service, _grant(client))
    assert issued.scopes == ("orders.read",)
    principal = any_service.authority.verify(issued.access.token, audience=AUDIENCE)
    assert principal.scopes == frozenset({"orders.read"})


class _Recording:
    """The real store, recording each confirmation it is asked for (and able to fail them)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.groups: list[int] = []
        self.failing = False
        self.held = threading.Event()
        self.hold = False
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def confirm_accounts(self, claims: Sequence[AccountClaim]) -> list[Account | None]:
        self.groups.append(len(claims))
        if self.hold:
            self.held.set()
            assert self.release.wait(30), "the test never released the confirmation"
        if self.failing:
            raise StoreUnavailable("injected")
        answers: list[Account | None] = self._store.confirm_accounts(claims)
        return answers


@pytest.fixture
def recording(backend_url: str) -> Iterator[tuple[RunningService, _Recording, NewClient]]:
    """A TokenService whose store records (or fails) confirmations, and a client of it
    whose account the service already holds in memory (one grant made)."""
    store = _Recording(open_store(backend_url))
    with running_on(store) as running:
        client = running.add_client()
        _on_the_loop(running, _grant(client))
        store.groups.clear()
        yield running, store, client


async def _at_once(service: RunningService, grant: ClientCredentialsGrant) -> list[Any]:
    calls = [service.authority.issue_async(grant) for _ in range(GRANTS_AT_ONCE)]
    return list(await asyncio.gather(*calls, return_exceptions=True))


def test_grants_on_a_loop_share_their_confirmations(
    recording: tuple[RunningService, _Recording, NewClient],
) -> None:
    service, store, client = recording

    issued = service.loop.run(_at_once(service, _grant(client)))

    assert all(isinstance(each, Issued) for each in issued)
    assert sum(store.groups) == GRANTS_AT_ONCE
    assert len(store.groups) < GRANTS_AT_ONCE, store.groups
    for each in issued:
        service.authority.verify(each.access.token, audience=AUDIENCE)


def test_a_store_failure_while_confirming_fails_every_grant_of_the_group(
    recording: tuple[RunningService, _Recording, NewClient],
) -> None:
    service, store, client = recording
    store.failing = True

    outcomes = service.loop.run(_at_once(service, _grant(client)))

    assert all(isinstance(each, Unavailable) for each in outcomes), outcomes
    store.failing = False
    assert _on_the_loop(service, _grant(client)).access.token


def test_a_grant_cancelled_while_confirming_leaves_the_others_answered(
    recording: tuple[RunningService, _Recording, NewClient],
) -> None:
    service, store, client = recording
    store.hold = True

    async def two_then_cancel_one() -> tuple[Any, Any]:
        kept = asyncio.create_task(service.authority.issue_async(_grant(client)))
        dropped = asyncio.create_task(service.authority.issue_async(_grant(client)))
        await asyncio.to_thread(store.held.wait, 10)
        dropped.cancel()
        store.hold = False
        store.release.set()
        return await asyncio.gather(kept, dropped, return_exceptions=True)

    kept, dropped = service.loop.run(two_then_cancel_one())
    assert isinstance(kept, Issued)
    assert isinstance(dropped, asyncio.CancelledError)
    assert _on_the_loop(service, _grant(client)).access.token  # the loop's group goes on


def test_grants_racing_a_removal_leave_no_working_token(any_service: RunningService) -> None:
    """Grants on the loop while the client is removed: whatever each got, nothing works after."""
    client = any_service.add_client()
    _on_the_loop(any_service, _grant(client))

    async def race() -> list[Any]:
        grants = asyncio.ensure_future(_at_once(any_service, _grant(client)))
        await asyncio.to_thread(any_service.admin.remove, client.client_id, AccountKind.CLIENT)
        return list(await grants)

    outcomes = any_service.loop.run(race())

    issued = [each for each in outcomes if isinstance(each, Issued)]
    refused = [each for each in outcomes if not isinstance(each, Issued)]
    assert all(isinstance(each, InvalidGrant) for each in refused), refused
    assert all(_refused(any_service, each.access.token) for each in issued)
    with pytest.raises(InvalidGrant):
        _on_the_loop(any_service, _grant(client))


def _account(name: str) -> Account:
    return Account(name, AccountKind.CLIENT, "hmac-sha256$0", ("a",), (AUDIENCE,), 0)


def test_memory_keeps_the_most_recently_used_clients_and_no_more() -> None:
    clients = _Clients(2)
    for name in ("a", "b"):
        clients.put(name, _account(name))
    assert clients.get("a") is not None  # "a" is now the most recently used
    clients.put("c", _account("c"))

    assert len(clients) == 2
    assert clients.get("b") is None
    assert clients.get("a") is not None and clients.get("c") is not None
    clients.put("a", None)  # a grant found it gone
    assert clients.get("a") is None
