"""Reading the bearer token out of call metadata (RFC 6750 §2.1, RFC 7235 §2.1).

The rules: exactly one ``authorization`` entry (zero is missing, two or more is
malformed, never "first wins"); the value is bounded in size before anything else looks
at it; the scheme ``Bearer`` compares case-insensitively in ASCII only; one or more
spaces, then one b64token. ``authorization-bin`` and every other key are never
credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bearer_grpc.core.errors import TokenMalformed, TokenMissing
from bearer_grpc.core.wire import AUTHORIZATION

MAX_AUTHORIZATION_BYTES = 8192
"""Longest ``authorization`` value read; gRPC's default metadata budget is 8 KiB."""

_B64TOKEN = r"[A-Za-z0-9\-._~+/]+=*"  # RFC 6750 §2.1
_BEARER = re.compile(rf"[Bb][Ee][Aa][Rr][Ee][Rr] +({_B64TOKEN})", re.ASCII)
B64TOKEN = re.compile(_B64TOKEN, re.ASCII)
"""The b64token grammar: what may follow ``Bearer `` (use ``fullmatch``)."""


def authorization_value(
    metadata: Iterable[tuple[str, str | bytes]] | None,
    *,
    max_bytes: int = MAX_AUTHORIZATION_BYTES,
) -> str:
    """Return the value of the single ``authorization`` entry, unparsed.

    Raises:
        TokenMissing: No ``authorization`` entry.
        TokenMalformed: Several entries, or an oversized or binary value.
    """
    found: str | bytes | None = None
    count = 0
    for key, value in metadata or ():
        if key == AUTHORIZATION or (len(key) == 13 and key.lower() == AUTHORIZATION):
            count += 1
            found = value
    if count == 0:
        raise TokenMissing()
    if count > 1 or not isinstance(found, str) or len(found) > max_bytes:
        raise TokenMalformed()
    return found


def bearer_token(
    metadata: Iterable[tuple[str, str | bytes]] | None,
    *,
    max_bytes: int = MAX_AUTHORIZATION_BYTES,
) -> str:
    """Return the token of the single ``authorization: Bearer <token>`` entry.

    Args:
        metadata: Call metadata as (key, value) pairs; gRPC delivers keys in lower case.
        max_bytes: Longest value accepted.

    Returns:
        The b64token.

    Raises:
        TokenMissing: No ``authorization`` entry.
        TokenMalformed: Several entries, an oversized or binary value, another scheme, or
            a value that is not exactly one b64token.
    """
    return parse_bearer(authorization_value(metadata, max_bytes=max_bytes))


def parse_bearer(value: str) -> str:
    """The b64token of an ``authorization`` value ``Bearer <token>``.

    Raises:
        TokenMalformed: Another scheme, or not exactly one b64token.
    """
    match = _BEARER.fullmatch(value)
    if match is None:
        raise TokenMalformed()
    return match.group(1)
