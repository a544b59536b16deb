"""The client-credentials grant on an event loop: clients held in memory, confirmations grouped.

The rule is :mod:`.client_credentials`'s; this is its asyncio driver, built for the
grant services call most. Two things make it cheap without loosening the rule:

- **Clients in memory.** A client's account, once read, is kept (the most recently used
  :data:`REMEMBERED_CLIENTS`). The rule never trusts it alone: every token is confirmed
  against the store before it is returned, a changed account is signed again as it is
  now, and a secret the remembered account does not accept is checked once more against
  a fresh read (a rotated secret).
- **Grouped confirmations.** Concurrent grants on one event loop are confirmed in one
  store transaction: while one transaction runs in a worker thread, the grants arriving
  meanwhile wait and go together in the next one (group commit). Each grant's token was
  signed before its transaction began, so the rule's ordering against removals holds for
  every grant of a group.

The event loop itself only hashes, compares and signs; the store is reached from worker
threads.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

from bearer_grpc.service.client_credentials import (
    Confirm,
    Need,
    Read,
    ReadClient,
    Steps,
    advance,
)
from bearer_grpc.service.grants import Issued
from bearer_grpc.service.revoking import store_errors
from bearer_grpc.service.throttle import LoginThrottle
from bearer_grpc.store import Account, AccountClaim, AccountKind, Store

REMEMBERED_CLIENTS: Final = 4096
"""Client accounts kept in memory, the most recently used."""

ConfirmAccounts = Callable[[Sequence[AccountClaim]], list[Account | None]]


class ClientGrants:
    """Runs client-credentials steps on the running event loop (see the module docstring).

    Args:
        store: Where accounts are read and grants confirmed.
        throttle: Where failed sign-ins are counted.
    """

    def __init__(self, store: Store, throttle: LoginThrottle) -> None:
        self._store = store
        self._throttle = throttle
        self._clients = _Clients(REMEMBERED_CLIENTS)
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Group] = (
            weakref.WeakKeyDictionary()
        )
        self._groups_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientGrants(remembered={len(self._clients)})"

    async def run(self, steps: Steps) -> Issued:
        """Run the grant's steps to the end.

        Raises:
            Unavailable: The store cannot answer; nothing was issued.
            Whatever the steps raise (see :func:`.client_credentials.client_credentials`).
        """
        with store_errors():
            need: Need | Issued = next(steps)
            while not isinstance(need, Issued):
                if isinstance(need, ReadClient):
                    answer = await self._read(need)
                elif isinstance(need, Confirm):
                    answer = await self._confirm(need.claim)
                else:
                    await asyncio.to_thread(self._throttle.secret_failed, need.peer)
                    answer = Read()
                need = advance(steps, answer)
            return need

    async def _read(self, need: ReadClient) -> Read:
        if not need.fresh:
            remembered = self._clients.get(need.name)
            if remembered is not None:
                return Read(remembered, remembered=True)
        account = await asyncio.to_thread(self._store.get_account, need.name, AccountKind.CLIENT)
        self._clients.put(need.name, account)
        return Read(account)

    async def _confirm(self, claim: AccountClaim) -> Read:
        current = await self._group().confirm(claim)
        self._clients.put(claim.name, current)
        return Read(current)

    def _group(self) -> _Group:
        loop = asyncio.get_running_loop()
        with self._groups_lock:
            group = self._groups.get(loop)
            if group is None:
                group = self._groups[loop] = _Group(self._store.confirm_accounts)
            return group


class _Clients:
    """The most recently used client accounts, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._accounts: OrderedDict[str, Account] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._accounts)

    def get(self, name: str) -> Account | None:
        with self._lock:
            account = self._accounts.get(name)
            if account is not None:
                self._accounts.move_to_end(name)
            return account

    def put(self, name: str, account: Account | None) -> None:
        """Remember ``account`` under ``name``; None forgets the name."""
        with self._lock:
            if account is None:
                self._accounts.pop(name, None)
                return
            self._accounts[name] = account
            self._accounts.move_to_end(name)
            while len(self._accounts) > self._size:
                self._accounts.popitem(last=False)


class _Group:
    """One event loop's confirmations, sent to the store together (group commit).

    The first waiting confirmation starts a drain task; it sends everything waiting in one
    call, in a worker thread, then again whatever arrived meanwhile, until none waits.
    A caller cancelled while waiting loses only its own answer.
    """

    def __init__(self, confirm: ConfirmAccounts) -> None:
        self._confirm = confirm
        self._waiting: list[tuple[AccountClaim, asyncio.Future[Account | None]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def confirm(self, claim: AccountClaim) -> Account | None:
        future: asyncio.Future[Account | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((claim, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        group: list[tuple[AccountClaim, asyncio.Future[Account | None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    answers = await asyncio.to_thread(self._confirm, [c for c, _ in group])
                except Exception as err:  # the store's failure is every waiter's
                    for _, future in group:
                        if not future.done():
                            future.set_exception(err)
                    continue
                for (_, future), answer in zip(group, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:  # cancelled (the loop is closing): nobody waits forever
            for _, future in group + self._waiting:
                if not future.done():
                    future.cancel()
            self._waiting = []
            self._drain = None
