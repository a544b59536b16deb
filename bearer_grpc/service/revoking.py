"""Revoking tokens: by value (possession suffices) or by id (own token, or admin).

An access token is revoked by its ``jti``; a refresh token revokes its whole family (one
revocation, which every access token naming the family in ``sid`` falls under). Each
revocation writes its audit event in the same transaction: the actor is the caller's
subject (by id), the client that authenticated (over HTTP), or the token's holder.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from bearer_grpc.core.clock import Clock
from bearer_grpc.core.errors import (
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
    Unavailable,
)
from bearer_grpc.core.secrets import refresh_token_hash
from bearer_grpc.core.tokens import MAX_TOKEN_BYTES, TokenVerifier
from bearer_grpc.service import audit
from bearer_grpc.service.issuing import MAX_ID_LENGTH, require
from bearer_grpc.service.revocations import RevocationLog
from bearer_grpc.service.settings import (
    ADMIN_AUDIENCE,
    ADMIN_SCOPE,
    MAX_ACCESS_TTL,
    ServiceSettings,
)
from bearer_grpc.store import Store, StoreUnavailable

_REFRESH_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
_NOT_YOURS = "the token was issued to another client"


class Revoking:
    """The revocation rules of a :class:`~bearer_grpc.service.authority.TokenAuthority`.

    Args:
        store: Where revocations are committed.
        revocations: This process's revocation log (what is revoked already).
        verifier: The verifier over the currently published keys.
        settings: The service's settings (the leeway).
        clock: Wall-clock time source.
        caught_up: Reads the new revocations into the log, after each one written.
    """

    def __init__(
        self,
        store: Store,
        revocations: RevocationLog,
        verifier: Callable[[], TokenVerifier],
        settings: ServiceSettings,
        *,
        clock: Clock,
        caught_up: Callable[[], None],
    ) -> None:
        self._store = store
        self._revocations = revocations
        self._verifier = verifier
        self._settings = settings
        self._clock = clock
        self._caught_up = caught_up

    def _now(self) -> int:
        return math.floor(self._clock())

    def revoke_token(self, token: str, *, client_id: str | None = None) -> int:
        """Revoke an access token or a refresh token by value.

        Possession suffices, unless ``client_id`` is given: then only a token issued to
        that client is revoked (RFC 7009 §2.1). An access token is revoked by its
        ``jti``; a refresh token revokes its whole family and the access tokens issued
        with it. Idempotent; an access token that has already expired needs nothing and
        returns 0.

        Returns:
            Sequence of the revocation event (0 if none was needed or for a refresh token).

        Raises:
            InvalidRequest: Empty, oversized, or not a token this service issued.
            Forbidden: ``client_id`` is given and the token was issued to another client.
            Unavailable: The store cannot answer; nothing was written.
        """
        require(token, "token", MAX_TOKEN_BYTES)
        actor = client_id if client_id is not None else audit.TOKEN_HOLDER
        if _REFRESH_TOKEN.fullmatch(token):
            with store_errors():
                if client_id is not None:
                    self._check_refresh_owner(token, client_id)
                return self._revoke_refresh(token, actor)
        try:
            claims = self._verifier().verify_signature(token)
            principal = self._verifier().check_claims(claims, audience=None)
        except TokenExpired:
            return 0
        except (TokenInvalid, TokenMalformed) as err:
            raise InvalidRequest("unknown token") from err
        if client_id is not None and principal.client_id != client_id:
            raise Forbidden(_NOT_YOURS)
        with store_errors():
            return self._revoke(principal.token_id, principal.expires_at, actor)

    def _check_refresh_owner(self, value: str, client_id: str) -> None:
        found = self._store.get_refresh_token(refresh_token_hash(value))
        if found is None:
            raise InvalidRequest("unknown token")
        if found.client_id != client_id:
            raise Forbidden(_NOT_YOURS)

    def _revoke_refresh(self, value: str, actor: str) -> int:
        now = self._now()
        event = audit.event(actor, audit.FAMILY_REVOKE, "", now)
        written = self._store.revoke_refresh_family(refresh_token_hash(value), now, audit=event)
        if written is None:
            raise InvalidRequest("unknown token")
        if written:
            audit.logged(replace(event, target=written[0].target))
        self._caught_up()
        return 0

    def revoke_token_id(self, token_id: str, *, caller_token: str | None) -> int:
        """Revoke an access token by ``jti``: the caller's own, or any with an admin token.

        An admin token has scope ``bearer-grpc:admin`` and audience ``bearer-grpc``.

        Args:
            token_id: The ``jti`` to revoke.
            caller_token: The caller's bearer token (None when the call carried none).

        Returns:
            Sequence of the revocation event.

        Raises:
            InvalidRequest: ``token_id`` empty or oversized.
            AuthError: The caller's token is missing or not valid (TokenMissing, ...),
                or lacks the admin scope for another token (InsufficientScope).
            Unavailable: The store cannot answer; nothing was written.
        """
        require(token_id, "token_id", MAX_ID_LENGTH)
        if caller_token is None:
            raise TokenMissing()
        claims = self._verifier().verify_signature(caller_token)
        caller = self._verifier().check_claims(claims, audience=None)
        if caller.token_id == token_id:
            expires_at = caller.expires_at
        elif self._revocations.refuses(caller):
            raise TokenRevoked()
        elif ADMIN_SCOPE in caller.scopes and ADMIN_AUDIENCE in caller.audience:
            expires_at = self._now() + MAX_ACCESS_TTL + self._settings.leeway
        else:
            raise InsufficientScope((ADMIN_SCOPE,))
        with store_errors():
            return self._revoke(token_id, expires_at, caller.subject)

    def _revoke(self, jti: str, expires_at: int, actor: str) -> int:
        now = self._now()
        event = audit.event(actor, audit.TOKEN_REVOKE, jti, now)
        revocation = self._store.revoke(jti, expires_at, now, audit=event)
        if revocation.revoked_at == now and revocation.jti == jti:
            audit.logged(event)  # written now (a repeat returns the first one, unwritten)
        self._caught_up()
        return revocation.sequence


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """A store that cannot answer becomes :class:`Unavailable` (nothing was written)."""
    try:
        yield
    except StoreUnavailable as err:
        raise Unavailable() from err
