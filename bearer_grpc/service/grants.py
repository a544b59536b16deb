"""What a caller presents to get a token, and what it gets.

The TokenService's request vocabulary, shared by the rules (:mod:`.authority`) and the
gRPC servicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bearer_grpc.core.tokens import IssuedToken


@dataclass(frozen=True)
class ClientCredentialsGrant:
    """A service proving itself with its client id and secret."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class PasswordGrant:
    """A person logging in with username and password."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RefreshGrant:
    """A refresh token being exchanged (and rotated)."""

    refresh_token: str = field(repr=False)


Grant = ClientCredentialsGrant | PasswordGrant | RefreshGrant


@dataclass(frozen=True)
class Issued:
    """What IssueToken returns.

    Attributes:
        access: The access token.
        scopes: Granted scopes.
        lifetime: Seconds until the access token expires.
        refresh_token: New refresh token ("" for client credentials); hidden from repr.
        refresh_lifetime: Seconds until it expires (0 when none).
    """

    access: IssuedToken
    scopes: tuple[str, ...]
    lifetime: int
    refresh_token: str = field(default="", repr=False)
    refresh_lifetime: int = 0
