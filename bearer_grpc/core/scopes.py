"""Scopes and names: syntax (RFC 6749 §3.3) and the subset rules of issuing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bearer_grpc.core.errors import AudienceNotAllowed, InvalidRequest, ScopeNotAllowed

MAX_SCOPES = 64
"""Most scopes a principal, a request or a token may carry."""
MAX_SCOPE_LENGTH = 128
"""Longest single scope."""
MAX_AUDIENCES = 64
"""Most audiences an account may be allowed."""

_SCOPE = re.compile(rf"[\x21\x23-\x5b\x5d-\x7e]{{1,{MAX_SCOPE_LENGTH}}}", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}", re.ASCII)


def check_scopes(scopes: Iterable[str], *, what: str = "scope") -> tuple[str, ...]:
    """Validate scope tokens and return them de-duplicated, in first-seen order.

    Args:
        scopes: Scope strings.
        what: Name used in the error message.

    Raises:
        InvalidRequest: A scope is empty, too long, has characters outside RFC 6749's
            scope-token set, or there are too many.
    """
    if isinstance(scopes, str):
        raise TypeError("scopes must be a collection of strings, not one string")
    out: dict[str, None] = {}
    for scope in scopes:
        if not isinstance(scope, str) or _SCOPE.fullmatch(scope) is None:
            raise InvalidRequest(f"invalid {what}")
        out[scope] = None
        if len(out) > MAX_SCOPES:
            raise InvalidRequest(f"too many {what}s")
    return tuple(out)


def check_name(name: str, *, what: str) -> str:
    """Validate a principal or audience name: 1-128 ASCII letters, digits, ``._@+:-``.

    Raises:
        InvalidRequest: The name is empty, too long or has other characters.
    """
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidRequest(f"invalid {what}")
    return name


_AUDIENCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}", re.ASCII)


def check_audience(audience: str) -> str:
    r"""Validate an audience: 1-256 printable ASCII characters without space, ``"`` or ``\``.

    URLs such as ``https://orders.example.com`` are therefore fine.

    Raises:
        InvalidRequest: The audience is empty, too long or has other characters.
    """
    if not isinstance(audience, str) or _AUDIENCE.fullmatch(audience) is None:
        raise InvalidRequest("invalid audience")
    return audience


def check_request(scopes: Iterable[str], audience: str) -> tuple[tuple[str, ...], str]:
    """A token request's scopes (checked, de-duplicated) and audience (checked unless empty).

    Raises:
        InvalidRequest: A scope or the audience is malformed.
    """
    requested = check_scopes(scopes)
    if audience:
        check_audience(audience)
    return requested, audience


def grant_scopes(requested: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """The scopes to grant: all allowed ones if none were requested, else the request.

    Args:
        requested: Scopes asked for (already syntax-checked with :func:`check_scopes`).
        allowed: Scopes the principal may have.

    Raises:
        ScopeNotAllowed: A requested scope is not allowed for the principal.
    """
    if not requested:
        return tuple(allowed)
    allowed_set = set(allowed)
    if any(scope not in allowed_set for scope in requested):
        raise ScopeNotAllowed()
    return tuple(requested)


def grant_audience(requested: str, allowed: Sequence[str]) -> str:
    """The audience to grant: the principal's first one if none was requested.

    Raises:
        AudienceNotAllowed: The requested audience is not allowed, or the principal has none.
    """
    if not allowed:
        raise AudienceNotAllowed("no audience allowed")
    if not requested:
        return allowed[0]
    if requested not in allowed:
        raise AudienceNotAllowed()
    return requested


def parse_scope_claim(value: object) -> frozenset[str]:
    """Scopes of a token's ``scope`` claim (space-separated string); absent means none.

    Raises:
        ValueError: The claim is present but not a string.
    """
    if value is None:
        return frozenset()
    if not isinstance(value, str):
        raise ValueError("scope claim is not a string")
    return frozenset(scope for scope in value.split(" ") if scope)  # RFC 6749: %x20 only
