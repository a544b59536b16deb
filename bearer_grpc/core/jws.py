"""Compact JWS, read strictly: shape, header, canonical base64url, signature.

This layer knows nothing of claims. It reads a token as exactly three base64url
segments, each the canonical encoding of its bytes, a header and a payload that are
strict JSON objects (a member name given twice is refused, never "first wins" or "last
wins", so no other JSON parser in front of or behind this one can read a different
token; so are NaN and the infinities), and checks the signature with the algorithm
object bound to the trusted key (PyJWT's ``PyJWK.Algorithm``, minimum key lengths
enforced), never an algorithm the token names.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final, NamedTuple

import jwt

from bearer_grpc.core.errors import TokenInvalid, TokenMalformed

FORBIDDEN_HEADERS: Final = frozenset({"crit", "b64", "jwk", "jku", "x5u", "x5c", "x5t", "zip"})
"""Header members never accepted: key material and extensions in a token are never
trusted, and no extension is understood."""

_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)", re.ASCII)
_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS: Final = {0: 0, 2: 0b1111, 3: 0b11}
"""Mask of the bits the last character of a segment carries beyond the data, by the
segment's length modulo 4 (1 is an impossible length)."""


class Compact(NamedTuple):
    """A compact JWS split into its segments, with its header read.

    Attributes:
        header: The protected header, a strict JSON object.
        header_b64: The header segment as sent.
        payload_b64: The payload segment as sent.
        signature_b64: The signature segment as sent.
    """

    header: dict[str, Any]
    header_b64: str
    payload_b64: str
    signature_b64: str


def parse_compact(token: str, *, max_bytes: int) -> Compact:
    """Split ``token`` into its three segments and read its header.

    Raises:
        TokenMalformed: Longer than ``max_bytes``, not three base64url segments, or a
            header that is not a strict JSON object.
    """
    if not isinstance(token, str) or len(token) > max_bytes:
        raise TokenMalformed()
    match = _COMPACT.fullmatch(token)
    if match is None:
        raise TokenMalformed()
    header_b64, payload_b64, signature_b64 = match.groups()
    try:
        header = json_object(_b64decode(header_b64))
    except (binascii.Error, ValueError, TokenInvalid) as err:
        raise TokenMalformed() from err
    return Compact(header, header_b64, payload_b64, signature_b64)


def verified_payload(compact: Compact, key: jwt.PyJWK) -> dict[str, Any]:
    """The payload object of ``compact``, once its signature is verified with ``key``.

    What PyJWS.decode_complete does after its own parse, without repeating it:
    :func:`parse_compact` has checked the base64url alphabet and parsed the header once,
    strictly. Every segment must be the canonical encoding of its bytes (one text per
    token, as PyJWS requires).

    Raises:
        TokenInvalid: A segment is not canonical, the key is too short for its
            algorithm, the signature does not verify, or the payload is not a strict
            JSON object.
    """
    algorithm = key.Algorithm
    try:
        signature = _b64decode_canonical(compact.signature_b64)
        payload = _b64decode_canonical(compact.payload_b64)
        _b64decode_canonical(compact.header_b64)
        prepared = algorithm.prepare_key(key.key)
        if algorithm.check_key_length(prepared):
            raise TokenInvalid()
        signing_input = f"{compact.header_b64}.{compact.payload_b64}".encode("ascii")
        valid = algorithm.verify(signing_input, prepared, signature)
    except (jwt.PyJWTError, ValueError, TypeError) as err:
        raise TokenInvalid() from err
    if not valid:
        raise TokenInvalid()
    return json_object(payload)


def unverified_claims(compact: Compact) -> dict[str, Any]:
    """The payload object of ``compact``, read as strictly as a verified one but NOT verified.

    Only for choosing which configured issuer's keys and rules to apply.

    Raises:
        TokenInvalid: The payload segment is not canonical, or not a strict JSON object.
    """
    try:
        payload = _b64decode_canonical(compact.payload_b64)
    except (binascii.Error, ValueError) as err:
        raise TokenInvalid() from err
    return json_object(payload)


def json_object(raw: bytes) -> dict[str, Any]:
    """A strict JSON object from UTF-8 bytes.

    Raises:
        TokenInvalid: Not UTF-8, not JSON, not an object, a duplicate member name, NaN
            or an infinity, or nested too deep.
    """
    try:
        value = _JSON.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise TokenInvalid() from err
    if not isinstance(value, dict):
        raise TokenInvalid()
    return value


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64decode_canonical(segment: str) -> bytes:
    """The bytes of a base64url segment (alphabet already checked) that encodes them canonically.

    Canonically means: a possible length, and no bit set beyond the data in its last
    character.

    Raises:
        ValueError: Not such a segment.
    """
    unused = _UNUSED_BITS.get(len(segment) % 4)
    if unused is None or _B64URL_ALPHABET.index(segment[-1]) & unused:
        raise ValueError("not a canonical base64url segment")
    return _b64decode(segment)


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
