"""The client-credentials grant, written once as steps that a blocking or an asyncio driver runs.

The rule: a client proves itself with its id and its secret (the current one, or the
previous one until its deadline; a certificate-bound client also needs its mTLS
certificate). Its token is signed for the account as read, then confirmed: the store
answers, in one transaction ordered against removals and subject revocations, with the
account as it is now. The token is issued only if that is the very account it was signed
for. A removed (or revoked) account is refused; a changed one (new scopes, a rotated
secret) is checked again as it is now and signed anew.

So an account read from memory is never trusted on its own: whatever a grant read, what
it issues is what the store holds when the grant commits. That lets the asyncio driver
(:mod:`.client_grants`) keep clients in memory and confirm concurrent grants together.

The steps yield what they need from outside (:class:`ReadClient`, :class:`Confirm`,
:class:`CountFailure`) and are sent a :class:`Read` back (:func:`advance`);
:func:`run_on_store` is the blocking driver.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

from bearer_grpc.core.errors import InvalidGrant
from bearer_grpc.service.grants import ClientCredentialsGrant, Issued
from bearer_grpc.service.throttle import LoginThrottle
from bearer_grpc.store import Account, AccountClaim, AccountKind, Store

CONFIRM_TRIES = 3
"""Signings of one grant, each confirmed; an account changed this often meanwhile is refused."""


@dataclass(frozen=True)
class ReadClient:
    """Need: the client's account. ``fresh``: from the store, not from memory."""

    name: str
    fresh: bool = False


@dataclass(frozen=True)
class Confirm:
    """Need: the account a token was signed for, as it is now (:meth:`Store.confirm_accounts`)."""

    claim: AccountClaim


@dataclass(frozen=True)
class CountFailure:
    """Need: one failed sign-in counted against ``peer``."""

    peer: str


Need = ReadClient | Confirm | CountFailure


@dataclass(frozen=True)
class Read:
    """The answer to a need: an account (or None), and whether it came from memory."""

    account: Account | None = None
    remembered: bool = False


Steps = Generator[Need, Read, Issued]


class ClientRules(Protocol):
    """The pieces of the rule that need no store (``Issuing`` provides them)."""

    def check_client_grant(self, grant: ClientCredentialsGrant, peer: str) -> None:
        """Refuse malformed credentials, and a peer held back for guessing."""
        ...

    def client_accepted(
        self, client: Account | None, secret: str, certificate: bytes | None
    ) -> bool:
        """Whether the secret (and certificate) prove the client."""
        ...

    def client_token(
        self, client: Account, scopes: tuple[str, ...], audience: str, certificate: bytes | None
    ) -> tuple[Issued, int]:
        """Sign the client's token: what the grant returns, and the token's ``iat``."""
        ...


def client_credentials(
    rules: ClientRules,
    grant: ClientCredentialsGrant,
    scopes: tuple[str, ...],
    audience: str,
    peer: str,
    certificate: bytes | None,
) -> Steps:
    """The grant's steps (see the module docstring).

    Raises:
        InvalidRequest: The id or secret is empty, oversized or malformed.
        LoginThrottled: The peer failed too often lately.
        InvalidGrant: The credentials are not accepted, or the account went meanwhile.
        Forbidden: A requested scope or audience is not allowed.
    """
    rules.check_client_grant(grant, peer)
    read = yield ReadClient(grant.client_id)
    client = read.account
    secret = grant.client_secret
    if read.remembered and not rules.client_accepted(client, secret, certificate):
        client = (yield ReadClient(grant.client_id, fresh=True)).account  # a new secret?
    for _ in range(CONFIRM_TRIES):
        if client is None or not rules.client_accepted(client, secret, certificate):
            yield CountFailure(peer)
            raise InvalidGrant()
        issued, issued_at = rules.client_token(client, scopes, audience, certificate)
        claim = AccountClaim(client.name, AccountKind.CLIENT, issued_at)
        current = (yield Confirm(claim)).account
        if current == client:
            return issued
        if current is None:
            raise InvalidGrant()  # removed (or revoked) while this grant was in progress
        client = current
    raise InvalidGrant()


def advance(steps: Steps, answer: Read) -> Need | Issued:
    """Send ``answer`` to the steps: what they need next, or what the grant issued."""
    try:
        return steps.send(answer)
    except StopIteration as done:
        issued: Issued = done.value
        return issued


def run_on_store(steps: Steps, store: Store, throttle: LoginThrottle) -> Issued:
    """Run the steps against the store itself, blocking (every read is a fresh one)."""
    need: Need | Issued = next(steps)
    while not isinstance(need, Issued):
        if isinstance(need, ReadClient):
            answer = Read(store.get_account(need.name, AccountKind.CLIENT))
        elif isinstance(need, Confirm):
            answer = Read(store.confirm_accounts([need.claim])[0])
        else:
            throttle.secret_failed(need.peer)
            answer = Read()
        need = advance(steps, answer)
    return need
