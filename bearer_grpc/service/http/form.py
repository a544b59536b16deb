"""Request bodies of the POST endpoints, read into one value per parameter.

They are ``application/x-www-form-urlencoded`` (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662
§2.1).

Pure: the HTTP library has parsed the media type and bounded the body's size already.
Refused with ``invalid_request``: another media type or charset; a body that is not
ASCII, not well formed, not UTF-8 once decoded, or has too many fields; a parameter
given twice (RFC 6749 §3.1 forbids it, and "first wins" is how parameter pollution
works); control characters (CR, LF, NUL...) in a name or value. Parameters sent without
a value count as omitted (RFC 6749 §3.1). Messages name a parameter only when it is one
this service knows, so they never echo what a caller sent.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Final

from bearer_grpc.service.http.errors import invalid_request

FORM_TYPE: Final = "application/x-www-form-urlencoded"
MAX_FIELDS: Final = 32
"""Most parameters a request may carry (a token request has at most eight)."""
KNOWN: Final = frozenset(
    {
        "grant_type",
        "scope",
        "audience",
        "resource",
        "client_id",
        "client_secret",
        "username",
        "password",
        "refresh_token",
        "token",
        "token_type_hint",
    }
)
"""Parameters some endpoint reads; the others are ignored (RFC 6749 §3.1)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

Form = Mapping[str, str]


def _named(name: str) -> str:
    return f"parameter {name}" if name in KNOWN else "a parameter"


def parse_form(body: bytes, *, media_type: str, charset: str | None) -> Form:
    """The parameters of a form body, one value each.

    Args:
        body: The request body, its size already bounded.
        media_type: The request's media type, lower case (no parameters).
        charset: The ``charset`` parameter of its Content-Type, if any.

    Raises:
        OAuthError: ``invalid_request``, for the reasons the module docstring lists.
    """
    if media_type != FORM_TYPE:
        raise invalid_request(f"the body must be {FORM_TYPE}")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise invalid_request("the form must be UTF-8")
    text = body.decode("ascii") if body.isascii() else ""
    if not body.isascii() or _BAD_ESCAPE.search(text):
        raise invalid_request("the form must be percent-encoded ASCII")
    try:
        fields = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise invalid_request("the form must be UTF-8") from None
    except ValueError:  # a field without "=", or too many fields
        raise invalid_request("malformed form") from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in fields:
        if not name:
            raise invalid_request("malformed form")
        if name in seen:
            raise invalid_request(f"{_named(name)} is repeated")
        seen.add(name)
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise invalid_request(f"{_named(name)} has control characters")
        if value:
            form[name] = value
    return form
