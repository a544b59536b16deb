"""HTTP Basic client authentication (``client_secret_basic``, RFC 6749 §2.3.1).

Pure. RFC 6749 has the client form-urlencode its id and secret before joining them with
a colon and base64-encoding the pair, but many clients skip that step (among Python
clients, none tested does it; Go's ``x/oauth2`` and Node's ``openid-client`` do). Both
are accepted: the pair is decoded as RFC 6749 asks, and when that yields something else
than the raw pair (a ``+`` or ``%`` in the id or secret), the raw pair is tried too. A
generated secret (base64url) reads the same either way.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from typing import Final

from bearer_grpc.service.http.errors import invalid_client

MAX_AUTHORIZATION_LENGTH: Final = 2048
"""Longest Authorization header read (an id of 128 and a secret of 512 characters,
percent-encoded and base64-encoded, fit)."""

_SCHEME = re.compile(r"basic", re.IGNORECASE | re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def decode_basic(header: str) -> list[tuple[str, str]]:
    """The ``(client_id, client_secret)`` readings of a ``Basic`` Authorization header.

    The first reading form-decodes id and secret (RFC 6749); a second, raw one follows
    when it differs. Id and secret must both be non-empty.

    Raises:
        OAuthError: ``invalid_client``: not ``Basic <base64>``, oversized, bad base64,
            not UTF-8, no colon, an empty part or control characters.
    """
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise invalid_client("authorization header too long")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip(" ")
    if not _SCHEME.fullmatch(scheme) or not _BASE64.fullmatch(credentials):
        raise invalid_client("malformed basic authorization")
    try:
        pair = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("malformed basic authorization") from None
    raw_id, colon, raw_secret = pair.partition(":")
    if not colon or not raw_id or not raw_secret or _CONTROL.search(pair):
        raise invalid_client("malformed basic authorization")
    readings = [_form_decoded(raw_id, raw_secret), (raw_id, raw_secret)]
    return [r for i, r in enumerate(readings) if r is not None and r not in readings[:i]]


def _form_decoded(raw_id: str, raw_secret: str) -> tuple[str, str] | None:
    try:
        client_id = urllib.parse.unquote_plus(raw_id, errors="strict")
        secret = urllib.parse.unquote_plus(raw_secret, errors="strict")
    except UnicodeDecodeError:
        return None  # not form-encoded: the raw reading stands alone
    if not client_id or not secret or _CONTROL.search(client_id + secret):
        return None
    return client_id, secret
