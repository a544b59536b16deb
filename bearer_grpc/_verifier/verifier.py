"""``bearer_grpc.Verifier``: what a protected sync server checks tokens with."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from bearer_grpc._verifier.base import TokenServiceLink, VerifierBase
from bearer_grpc._verifier.follower import Follower
from bearer_grpc.core.errors import TokenInvalid, VerifierUnavailable
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.verification import LocalVerification, peek_kid


class Verifier(VerifierBase):
    """Checks bearer tokens for one audience, for sync ``grpc`` servers.

    Build it with :meth:`from_jwks` (a fixed key set), :meth:`from_token_service` (keys
    and revocations followed from a TokenService) or :meth:`remote` (``VerifyToken``).
    A verifier following a TokenService starts one daemon thread when it is built and
    waits up to ``startup_timeout`` for the first keys and the revocation backlog, then
    returns either way and keeps trying in the background. Stop it with :meth:`close`
    or a ``with`` block; after closing it refuses every token with
    :class:`VerifierUnavailable`.

    Args:
        local: The in-memory verification state.
        link: The TokenService to follow, or None for a fixed key set.
    """

    def __init__(self, local: LocalVerification, link: TokenServiceLink | None = None) -> None:
        super().__init__(local, link)
        self._follower = Follower(local, link) if link is not None else None
        if self._follower is not None:
            self._follower.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread following the TokenService (None for a fixed key set)."""
        return self._follower.thread if self._follower is not None else None

    def lookup(self, token: str) -> Principal | None:
        """A cached verification of ``token``, re-checked for expiry and revocation.

        Raises:
            TokenRevoked: The cached token was revoked since.
            VerifierUnavailable: The verifier was closed.
        """
        if self._follower is not None and self._follower.closed:
            raise VerifierUnavailable()
        return self.local.lookup(token)

    def verify(self, token: str) -> Principal:
        """Fully verify ``token`` (no scopes: the policy checks those).

        Raises:
            VerifierUnavailable: The token cannot be checked: closed; (local mode) no keys
                or revocation backlog yet, ``startup_timeout`` after the start; (remote
                mode) the TokenService did not answer.
            AuthError: The token is not valid.
        """
        follower = self._follower
        if follower is None:
            return self.local.verify(token)
        if follower.closed:
            raise VerifierUnavailable()
        if follower.link.remote:
            return follower.verify_remote(token)
        if not follower.ready():
            raise VerifierUnavailable()
        try:
            return self.local.verify(token)
        except TokenInvalid:
            if not self.local.needs_key_refetch(token):
                raise
            follower.refetch_keys(peek_kid(token))  # a key published since the last fetch?
            if self.local.needs_key_refetch(token):
                raise
        return self.local.verify(token)

    def close(self) -> None:
        """Stop the background thread and close the channel (idempotent)."""
        if self._follower is not None:
            self._follower.close()
