"""Access tokens after RFC 9068: what they claim, how they are issued and verified.

Header ``{alg, kid, typ: at+jwt}``; claims ``iss, sub, aud, exp, iat, nbf, jti,
client_id, scope``. Verification, in order, refusing at the first failure:

1. size and shape: at most ``max_bytes``, exactly three strict base64url segments;
2. header: a JSON object, ``typ`` ``at+jwt``, a string ``kid`` found in the trusted key
   set, ``alg`` equal to that key's algorithm; no ``crit``, ``b64``, ``jwk``, ``jku``,
   ``x5u``, ``x5c`` (key material and extensions in a token are never trusted);
3. every segment the canonical base64url of its bytes; the signature, with the
   algorithm object bound to the key (PyJWT ``PyJWK.Algorithm``, minimum key lengths
   enforced), never one named by the token;
4. claims: ``exp, iat, iss, aud, sub, jti`` present and well typed (NumericDates are
   integers, not booleans, from 0 to the end of year 9999), ``iss`` and ``aud`` exact,
   ``exp``/``nbf``/``iat`` against the injected clock with leeway;
5. revocation by ``jti``; then the required scopes.

The header and the claims are strict JSON objects: a member name given twice is refused
(never "first wins" or "last wins", so no other JSON parser in front of or behind this
one can read a different token), as are NaN and the infinities.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import jwt

from bearer_grpc.core.errors import (
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenRevoked,
)
from bearer_grpc.core.keys import PublicKeySet, SigningKey
from bearer_grpc.core.scopes import parse_scope_claim
from bearer_grpc.core.secrets import new_id

TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type, not a secret)
DEFAULT_LEEWAY: Final = 30
"""Seconds of clock skew tolerated on exp, nbf and iat."""
MAX_TOKEN_BYTES: Final = 8192
"""Longest token looked at; anything longer is refused before decoding."""
MAX_NUMERIC_DATE: Final = 253_402_300_799
"""Latest NumericDate accepted (9999-12-31T23:59:59Z): later values are refused, so no
store column, ``datetime`` or other language's integer overflows on a signed ``exp``."""

_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)", re.ASCII)
_FORBIDDEN_HEADERS: Final = frozenset({"crit", "b64", "jwk", "jku", "x5u", "x5c", "x5t", "zip"})
_REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub", "jti")
_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS: Final = {0: 0, 2: 0b1111, 3: 0b11}
"""Mask of the bits the last character of a segment carries beyond the data, by the
segment's length modulo 4 (1 is an impossible length)."""


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
    ) -> None:
        self.keys = keys
        self.issuer = issuer
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
        if not isinstance(token, str) or len(token) > self._max_bytes:
            raise TokenMalformed()
        match = _COMPACT.fullmatch(token)
        if match is None:
            raise TokenMalformed()
        header_b64, payload_b64, signature_b64 = match.groups()
        header = _json_object(header_b64, TokenMalformed)
        key = self._key_for(header)
        # What PyJWS.decode_complete does after its own parse, without it: _COMPACT has
        # already checked the base64url alphabet (PyJWS does it again per byte in Python)
        # and the header is parsed once, strictly. Every segment must be the canonical
        # encoding of its bytes (one text per token, as PyJWS requires).
        algorithm = key.Algorithm
        try:
            signature = _b64decode_canonical(signature_b64)
            payload = _b64decode_canonical(payload_b64)
            _b64decode_canonical(header_b64)
            prepared = algorithm.prepare_key(key.key)
            if algorithm.check_key_length(prepared):
                raise TokenInvalid()
            signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
            valid = algorithm.verify(signing_input, prepared, signature)
        except (jwt.PyJWTError, ValueError, TypeError) as err:
            raise TokenInvalid() from err
        if not valid:
            raise TokenInvalid()
        return _json_object_bytes(payload)

    def _key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in (TOKEN_TYPE, "application/at+jwt"):
            raise TokenInvalid()
        if not _FORBIDDEN_HEADERS.isdisjoint(header):
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
        if any(name not in claims for name in _REQUIRED_CLAIMS):
            raise TokenInvalid()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", 0)
        if not (_is_numeric_date(exp) and _is_numeric_date(iat) and _is_numeric_date(nbf)):
            raise TokenInvalid()
        sub, jti, iss = claims["sub"], claims["jti"], claims["iss"]
        if not (_is_nonempty_str(sub) and _is_nonempty_str(jti) and iss == self.issuer):
            raise TokenInvalid()
        aud = _audiences(claims["aud"])
        if audience is not None and audience not in aud:
            raise TokenInvalid()
        client_id = claims.get("client_id", "")
        if not isinstance(client_id, str):
            raise TokenInvalid()
        try:
            scopes = parse_scope_claim(claims.get("scope"))
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


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64decode_canonical(segment: str) -> bytes:
    """The bytes of a base64url segment (alphabet already checked) that encodes them
    canonically: a possible length, and no bit set beyond the data in its last character.

    Raises:
        ValueError: Not such a segment.
    """
    unused = _UNUSED_BITS.get(len(segment) % 4)
    if unused is None or _B64URL_ALPHABET.index(segment[-1]) & unused:
        raise ValueError("not a canonical base64url segment")
    return _b64decode(segment)


def _json_object(segment: str, error: type[TokenMalformed] | type[TokenInvalid]) -> dict[str, Any]:
    try:
        raw = _b64decode(segment)
    except (binascii.Error, ValueError) as err:
        raise error() from err
    try:
        return _json_object_bytes(raw)
    except TokenInvalid as err:
        raise error() from err


def _json_object_bytes(raw: bytes) -> dict[str, Any]:
    try:
        value = _JSON.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise TokenInvalid() from err
    if not isinstance(value, dict):
        raise TokenInvalid()
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members; a name given twice makes the whole document invalid."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


_JSON: Final = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_members)
"""The one decoder of every header and claims object (``json.loads`` with hooks builds a
new one per call)."""
