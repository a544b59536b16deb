"""Envoy's external authorization question, answered without I/O.

For each request Envoy asks ``bearer-grpc authz`` whether to forward it. The rules here
take what the request carries (its path and headers, as Envoy's ``CheckRequest`` lists
them), the policy and the verifier's fast path, and describe the answer; the servicer in
:mod:`bearer_grpc.authz` only turns that description into a ``CheckResponse``:

- :class:`Allow`: forward the request, with the caller's identity in the ``x-bearer-*``
  headers for the service behind Envoy, after removing every ``x-bearer-*`` header the
  caller sent (so none can be spoofed; public methods get them removed too).
- :class:`Deny`: refuse, with the error the interceptor would raise for the same call.
- :class:`PendingCheck`: a token the cache does not know; verify it, then
  :meth:`PendingCheck.finish`.

The token rules are the interceptor's own (:func:`~bearer_grpc.core.admission.admit`):
exactly one ``authorization`` header (Envoy joins repeated headers with a comma, which no
b64token contains, so two are malformed, never "first wins"), size-bounded before
parsing, the scheme compared case-insensitively. The path names the gRPC method
(``/package.Service/Method``); a plain HTTP request's path, without its query, is looked
up in the same policy. A path that is not in normal form (empty, ``.`` or ``..``
segments, percent-encoding, backslashes) is refused whoever asks: the service behind
Envoy might read it as another method than the policy did. Envoy's ``normalize_path``
and ``merge_slashes`` prevent such paths from reaching ``Check`` at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from bearer_grpc.core.admission import Lookup, Pending, admit
from bearer_grpc.core.errors import AuthError, BearerGrpcError, Forbidden
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.wire import AUTHORIZATION

SUBJECT_HEADER: Final = "x-bearer-subject"
"""The caller's ``sub``."""
SCOPES_HEADER: Final = "x-bearer-scopes"
"""The caller's scopes, sorted, separated by one space."""
CLIENT_ID_HEADER: Final = "x-bearer-client-id"
"""The ``client_id`` claim (absent when the token has none)."""
TOKEN_ID_HEADER: Final = "x-bearer-token-id"  # noqa: S105 (a header name)
"""The token's ``jti`` (absent when the token has none)."""
IDENTITY_PREFIX: Final = "x-bearer-"
"""Headers the caller sends with this prefix never reach the service."""

Headers = Sequence[tuple[str, str]]
"""Request headers as (lower-case name, value) pairs, pseudo-headers included."""

_PATH: Final = re.compile(r"/|(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@]+)+/?", re.ASCII)
_DOT_SEGMENT: Final = re.compile(r"/\.\.?(?:/|$)")
# Header values are sent as gRPC sends grpc-message: printable ASCII except "%" as is.
_SAFE: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True, slots=True)
class Allow:
    """Forward the request.

    Attributes:
        principal: The verified caller; None for a public method.
        strays: ``x-bearer-*`` headers the caller sent.
    """

    principal: Principal | None = None
    strays: tuple[str, ...] = ()

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers to set on the request, replacing any the caller sent.

        They carry the caller's identity (none for a public method).
        """
        return identity_headers(self.principal) if self.principal is not None else ()

    @property
    def remove(self) -> tuple[str, ...]:
        """Headers the caller sent to remove: its ``x-bearer-*`` not in :attr:`headers`.

        Envoy applies the headers it sets before those it removes.
        """
        names = {name for name, _ in self.headers}
        return tuple(key for key in self.strays if key not in names)


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse the request.

    Attributes:
        error: Why, as the interceptor would raise it (its status, message and
            ``ErrorInfo`` reason).
        grpc: Whether the request is a gRPC call (the refusal is then read as a gRPC
            status), or plain HTTP.
    """

    error: BearerGrpcError
    grpc: bool


class PendingCheck:
    """A request whose token missed the cache: verify :attr:`token`, then :meth:`finish`.

    Args:
        admission: The interceptor's pending admission of the token.
        strays: ``x-bearer-*`` headers the caller sent.
        grpc: Whether the request is a gRPC call.
        covered: False when a strict policy names no rule for the method.
    """

    __slots__ = ("_admission", "covered", "grpc", "strays")

    def __init__(
        self, admission: Pending, strays: tuple[str, ...], grpc: bool, covered: bool
    ) -> None:
        self._admission = admission
        self.strays = strays
        self.grpc = grpc
        self.covered = covered

    def __repr__(self) -> str:
        return "PendingCheck(token=<hidden>)"

    @property
    def token(self) -> str:
        """The bearer token to verify."""
        return self._admission.token

    def finish(self, verified: Principal | AuthError) -> Allow | Deny:
        """The answer once the verifier has spoken (a principal, or why it refused)."""
        if isinstance(verified, AuthError):
            return Deny(verified, self.grpc)
        try:
            principal = self._admission.finish(verified)
        except AuthError as err:
            return Deny(err, self.grpc)
        return Allow(principal, self.strays) if self.covered else Deny(Forbidden(), self.grpc)


def is_grpc(content_type: str) -> bool:
    """Whether a request with this ``content-type`` is a gRPC call."""
    return content_type.startswith("application/grpc")


@functools.lru_cache(maxsize=4096)
def method_of(path: str) -> str | None:
    """The method (gRPC) or route (plain HTTP) a request path names, without its query.

    None when the path is not in normal form. Memoised (bounded): paths repeat.
    """
    end = len(path)
    for mark in "?#":
        found = path.find(mark)
        if 0 <= found < end:
            end = found
    route = path[:end]
    if _PATH.fullmatch(route) is None or _DOT_SEGMENT.search(route) is not None:
        return None
    return route


def decide(
    policy: Policy,
    path: str,
    headers: Headers,
    lookup: Lookup,
    *,
    grpc: bool,
    shortcut: bool = False,
) -> Allow | Deny | PendingCheck:
    """Answer one ``Check`` as far as it goes without I/O.

    Args:
        policy: The access rules.
        path: The request's ``:path``.
        headers: The request's headers (at least ``authorization`` and every
            ``x-bearer-*`` one: :func:`headers_of`; others are not read).
        lookup: The verifier's fast path (a cache of verified tokens).
        grpc: Whether the request is a gRPC call (:func:`is_grpc`).
        shortcut: As for :func:`~bearer_grpc.core.admission.admit`: only for a lookup
            that finds nothing but tokens verified as exactly that string.

    Returns:
        The answer, or the verification a cache miss needs.
    """
    strays = tuple(dict.fromkeys(key for key, _ in headers if key.startswith(IDENTITY_PREFIX)))
    method = method_of(path)
    if method is None:
        return Deny(Forbidden(), grpc)
    rule = policy.rule_for(method)
    if rule.public:
        return Allow(None, strays)
    covered = not policy.strict or policy.covers(method)
    try:
        admission = admit(rule, headers, lookup, shortcut=shortcut)
    except AuthError as err:
        return Deny(err, grpc)
    if isinstance(admission, Pending):
        return PendingCheck(admission, strays, grpc, covered)
    return Allow(admission, strays) if covered else Deny(Forbidden(), grpc)


def identity_headers(principal: Principal) -> tuple[tuple[str, str], ...]:
    """The ``x-bearer-*`` headers that tell the service who ``principal`` is."""
    headers = [
        (SUBJECT_HEADER, header_value(principal.subject)),
        (SCOPES_HEADER, header_value(" ".join(sorted(principal.scopes)))),
    ]
    if principal.client_id:
        headers.append((CLIENT_ID_HEADER, header_value(principal.client_id)))
    if principal.token_id:
        headers.append((TOKEN_ID_HEADER, header_value(principal.token_id)))
    return tuple(headers)


def headers_of(header_map: Mapping[str, str]) -> Headers:
    """The headers the rules read, from Envoy's map of request headers.

    They are the ``authorization`` entry (Envoy joins repeated headers with a comma, so
    two are one malformed value) and every ``x-bearer-*`` name.
    """
    found = [(key, "") for key in header_map if key.startswith(IDENTITY_PREFIX)]
    value = header_map.get(AUTHORIZATION)
    if value is not None:
        found.append((AUTHORIZATION, value))
    return found


def header_value(text: str) -> str:
    """``text`` as a header value, percent-encoded as gRPC encodes ``grpc-message``.

    Printable ASCII other than ``%`` stays as is; ``%`` and every other character is
    percent-encoded in UTF-8.
    """
    if text.isascii() and text.isprintable() and "%" not in text:
        return text
    return quote(text, safe=_SAFE)
