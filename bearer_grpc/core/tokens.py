"""Access tokens after RFC 9068: what they claim, how they are issued and verified.

Header ``{alg, kid, typ: at+jwt}``; claims ``iss, sub, aud, exp, iat, nbf, jti,
client_id, scope``. Verification, in order, refusing at the first failure:

1. size and shape: at most ``max_bytes``, exactly three strict base64url segments;
2. header: a JSON object, a ``typ`` the profile accepts (``at+jwt`` by default), a
   string ``kid`` found in the trusted key set, ``alg`` equal to that key's algorithm;
   none of the forbidden members (``crit``, ``jwk``, ``jku``, ``x5u``, ``x5c``, ...);
3. every segment the canonical base64url of its bytes; the signature, with the
   algorithm bound to the key, never one named by the token (:mod:`.jws`);
4. claims: those the profile requires present (by default ``exp, iat, iss, aud, sub,
   jti``; ``exp, iss, aud, sub`` always) and every one present well typed
   (NumericDates are integers, not booleans, from 0 to the end of year 9999), ``iss``
   and ``aud`` exact, no ID token, ``exp``/``nbf``/``iat`` against the injected clock
   with leeway; scopes and client read where the profile says (:mod:`.profiles`);
5. revocation by ``jti``; then the required scopes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import jwt

from bearer_grpc.core.errors import (
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from bearer_grpc.core.jws import FORBIDDEN_HEADERS, parse_compact, verified_payload
from bearer_grpc.core.keys import PublicKeySet, SigningKey
from bearer_grpc.core.profiles import RFC9068, TokenProfile
from bearer_grpc.core.secrets import new_id

TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type, not a secret)
DEFAULT_LEEWAY: Final = 30
"""Seconds of clock skew tolerated on exp, nbf and iat."""
MAX_TOKEN_BYTES: Final = 8192
"""Longest token looked at; anything longer is refused before decoding."""
MAX_NUMERIC_DATE: Final = 253_402_300_799
"""Latest NumericDate accepted (9999-12-31T23:59:59Z): later values are refused, so no
store column, ``datetime`` or other language's integer overflows on a signed ``exp``."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: who the token was issued to and what it may do.

    A custom verifier builds one for a token bearer_grpc did not issue (an opaque token
    checked elsewhere, say): only ``subject`` is required, every other field has an
    "unknown" default.

    Attributes:
        subject: ``sub``: the client id or user name.
        scopes: Granted scopes (what a ``Policy`` checks).
        token_id: ``jti`` ("" when unknown).
        issuer: ``iss`` ("" when unknown).
        audience: ``aud`` as a tuple.
        client_id: ``client_id`` claim ("" when absent).
        issued_at: ``iat`` (0 when unknown).
        expires_at: ``exp`` (0 when unknown).
        claims: Every claim of the token, read-only.
    """

    subject: str
    scopes: frozenset[str] = frozenset()
    token_id: str = ""
    issuer: str = ""
    audience: tuple[str, ...] = ()
    client_id: str = ""
    issued_at: int = 0
    expires_at: int = 0
    claims: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def has_scopes(self, required: Iterable[str]) -> bool:
        """Whether every scope in ``required`` was granted."""
        return self.scopes.issuperset(required)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly signed access token.

    Attributes:
        token: The compact JWS (secret: hidden from ``repr``).
        token_id: Its ``jti``.
        expires_at: Its ``exp``.
    """

    token: str = field(repr=False)
    token_id: str
    expires_at: int


def issue_access_token(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    audience: str,
    scopes: Iterable[str],
    client_id: str,
    lifetime: int,
    now: int,
    token_id: str | None = None,
) -> IssuedToken:
    """Sign an RFC 9068 access token.

    Args:
        key: The active signing key.
        issuer: ``iss``.
        subject: ``sub``.
        audience: ``aud`` (one audience).
        scopes: Granted scopes, joined into ``scope``.
        client_id: ``client_id``.
        lifetime: Seconds until ``exp``.
        now: Issue time (``iat`` and ``nbf``).
        token_id: ``jti``; a fresh random id when None.

    Returns:
        The token with its id and expiry.
    """
    jti = token_id or new_id()
    exp = now + lifetime
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": exp,
        "iat": now,
        "nbf": now,
        "jti": jti,
        "client_id": client_id,
        "scope": " ".join(scopes),
    }
    return IssuedToken(token=key.sign(claims, typ=TOKEN_TYPE), token_id=jti, expires_at=exp)


def is_expired(expires_at: int, now: float, leeway: int) -> bool:
    """The one expiry rule: a token is refused once ``now`` reaches ``exp + leeway``."""
    return now >= expires_at + leeway


RevocationCheck = Callable[[str], bool]
"""Answers whether a ``jti`` is revoked (must not do I/O on the per-call path)."""


def _never_revoked(_jti: str) -> bool:
    return False


class TokenVerifier:
    """Verifies access tokens against trusted keys, one issuer, and a clock.

    Args:
        keys: The trusted public keys; only these are ever used.
        issuer: The exact ``iss`` required.
        clock: Current time in seconds (injected; never read otherwise).
        leeway: Seconds of skew tolerated on ``exp``, ``nbf`` and ``iat``.
        is_revoked: Revocation lookup by ``jti``.
        max_bytes: Longest token examined.
        profile: What the issuer's tokens look like (default: RFC 9068).
    """

    def __init__(
        self,
        keys: PublicKeySet,
        *,
        issuer: str,
        clock: Callable[[], float],
        leeway: int = DEFAULT_LEEWAY,
        is_revoked: RevocationCheck = _never_revoked,
        max_bytes: int = MAX_TOKEN_BYTES,
        profile: TokenProfile = RFC9068,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.profile = profile
        self.leeway = leeway
        self._clock = clock
        self._is_revoked = is_revoked
        self._max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"TokenVerifier(issuer={self.issuer!r}, keys={len(self.keys)})"

    def verify(
        self, token: str, *, audience: str, required_scopes: Iterable[str] = ()
    ) -> Principal:
        """Verify ``token`` for ``audience`` and return who it speaks for.

        Args:
            token: The compact JWS (the b64token of the authorization value).
            audience: This service's audience; the token's ``aud`` must name it.
            required_scopes: Scopes the call needs.

        Returns:
            The verified principal.

        Raises:
            TokenMalformed: Not a compact JWS of bounded size.
            TokenInvalid: Header, key, signature or claims not acceptable.
            TokenExpired: ``exp`` passed beyond the leeway.
            TokenRevoked: Its ``jti`` is revoked.
            InsufficientScope: A required scope is missing.
        """
        principal = self.authenticate(token, audience=audience)
        return self.authorize(principal, required_scopes)

    def authenticate(self, token: str, *, audience: str) -> Principal:
        """Everything :meth:`verify` checks except the scopes (see there)."""
        claims = self.verify_signature(token)
        principal = self.check_claims(claims, audience=audience)
        if self._is_revoked(principal.token_id):
            raise TokenRevoked()
        return principal

    @staticmethod
    def authorize(principal: Principal, required_scopes: Iterable[str]) -> Principal:
        """Return ``principal`` if it has every required scope.

        Raises:
            InsufficientScope: A required scope is missing.
        """
        required = tuple(required_scopes)
        if required and not principal.has_scopes(required):
            raise InsufficientScope(required)
        return principal

    def verify_signature(self, token: str) -> dict[str, Any]:
        """Steps 1-3: check shape, header and signature; return the claims object.

        Raises:
            TokenMalformed: Not a compact JWS of bounded size, or the header is unreadable.
            TokenInvalid: Header or signature not acceptable, or the claims are not a
                JSON object.
        """
        compact = parse_compact(token, max_bytes=self._max_bytes)
        return verified_payload(compact, self._key_for(compact.header))

    def _key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        if not self.profile.accepts_type(header):
            raise TokenInvalid()
        if not FORBIDDEN_HEADERS.isdisjoint(header):
            raise TokenInvalid()
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != key.algorithm_name:
            raise TokenInvalid()
        return key

    def check_claims(self, claims: Mapping[str, Any], *, audience: str | None) -> Principal:
        """Step 4: validate the registered claims and build the principal.

        Args:
            claims: The verified claims object.
            audience: The audience ``aud`` must name. None skips only that comparison
                (``aud`` must still be well formed); for the issuer itself, to which every
                audience it issued for is its own.

        Raises:
            TokenInvalid: A claim is missing, mistyped, or names another issuer or
                audience, or the token is not yet valid.
            TokenExpired: ``exp`` passed beyond the leeway.
        """
        profile = self.profile
        if any(name not in claims for name in profile.required_claims):
            raise TokenInvalid()
        exp, iat, nbf = claims["exp"], claims.get("iat", 0), claims.get("nbf", 0)
        if not (_is_numeric_date(exp) and _is_numeric_date(iat) and _is_numeric_date(nbf)):
            raise TokenInvalid()
        sub, jti, iss = claims["sub"], claims.get("jti", ""), claims["iss"]
        if "jti" in claims and not _is_nonempty_str(jti):
            raise TokenInvalid()
        if not (_is_nonempty_str(sub) and isinstance(jti, str) and iss == self.issuer):
            raise TokenInvalid()
        aud = _audiences(claims["aud"])
        if audience is not None and audience not in aud:
            raise TokenInvalid()
        if profile.is_id_token(claims, aud):
            raise TokenInvalid()
        try:
            client_id = profile.client_id(claims)
            scopes = profile.scopes(claims)
        except ValueError as err:
            raise TokenInvalid() from err
        now = self._clock()
        if is_expired(exp, now, self.leeway):
            raise TokenExpired()
        if nbf > now + self.leeway or iat > now + self.leeway:
            raise TokenInvalid()
        return Principal(
            subject=sub,
            scopes=scopes,
            token_id=jti,
            issuer=iss,
            audience=aud,
            client_id=client_id,
            issued_at=iat,
            expires_at=exp,
            claims=MappingProxyType(dict(claims)),
        )


def _is_numeric_date(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_NUMERIC_DATE


def _is_nonempty_str(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _audiences(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TokenInvalid()
