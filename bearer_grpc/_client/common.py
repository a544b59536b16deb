"""What both flavours of the token sources share: the rules, the settings, the bases.

- :func:`check_token`: a static token is one b64token;
- :func:`issue_request`, :func:`issued_token`: the ``IssueToken`` request of a
  client-credentials source and what a usable answer is;
- :func:`failure_text`: the code and message for "no token could be had";
- :func:`record_outcome`: what one answer or failure does to the renewal timetable
  (:class:`~bearer_grpc.core.renewal.Renewal`) and the log;
- :class:`ClientConfig`, :class:`StaticTokenBase`, :class:`ClientCredentialsBase`: the
  checked settings and the constructors of both flavours.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import grpc

from bearer_grpc._channel import Endpoint
from bearer_grpc.core.backoff import Backoff
from bearer_grpc.core.clock import Clock, system_clock
from bearer_grpc.core.errors import UnusableAnswer
from bearer_grpc.core.header import B64TOKEN
from bearer_grpc.core.renewal import DEFAULT_RENEW_BEFORE, Renewal
from bearer_grpc.v1 import token_service_pb2 as pb

log = logging.getLogger("bearer_grpc.client")

DEFAULT_TIMEOUT: Final = 10.0
"""Deadline of one ``IssueToken`` request, seconds."""
MAX_IDLE_WAIT: Final = 60.0
"""Longest the background sleeps without looking at the clock (wall-clock jumps)."""


def check_token(token: str) -> str:
    """Return ``token`` if it is one RFC 6750 b64token (what follows ``Bearer``).

    Raises:
        ValueError: Empty, or holds spaces, a scheme or other characters (the message
            never repeats the token).
    """
    if not B64TOKEN.fullmatch(token):
        raise ValueError("a bearer token is one b64token (RFC 6750), without 'Bearer '")
    return token


def issue_request(
    client_id: str, client_secret: str, scopes: Sequence[str], audience: str
) -> pb.IssueTokenRequest:
    """The ``IssueToken`` request of a client-credentials source.

    Raises:
        ValueError: ``client_id`` or ``client_secret`` is empty.
        TypeError: ``scopes`` is one string instead of a sequence of them.
    """
    if not client_id or not client_secret:
        raise ValueError("client_id and client_secret are required")
    if isinstance(scopes, str):
        raise TypeError("scopes is a sequence of scope names, not one string")
    grant = pb.ClientCredentialsGrant(client_id=client_id, client_secret=client_secret)
    return pb.IssueTokenRequest(client_credentials=grant, scopes=list(scopes), audience=audience)


def issued_token(response: pb.IssueTokenResponse) -> tuple[str, int]:
    """The token and lifetime of an ``IssueToken`` answer.

    Raises:
        UnusableAnswer: Not a bearer token, not one b64token, or no lifetime.
    """
    token = response.access_token
    if response.token_type.lower() != "bearer" or response.expires_in <= 0:
        raise UnusableAnswer()
    if not B64TOKEN.fullmatch(token):
        raise UnusableAnswer()
    return token, response.expires_in


def failure_text(target: str, error: BaseException) -> tuple[grpc.StatusCode, str]:
    """Code and message for "no token could be had", from the request's error.

    Only the token service's status and terse details are repeated (they never hold
    the secret); for an exception that is not an RPC error, only its type.
    """
    if isinstance(error, grpc.RpcError) and hasattr(error, "details"):
        code, details = error.code(), error.details() or ""
    elif isinstance(error, UnusableAnswer):
        code, details = grpc.StatusCode.INTERNAL, str(error)
    else:
        code, details = grpc.StatusCode.INTERNAL, type(error).__name__
    return code, f"no access token from the token service at {target}: {code.name}: {details}"


def record_outcome(
    renewal: Renewal,
    outcome: tuple[str, int] | BaseException,
    *,
    requested_at: float,
    now: float,
    client_id: str,
    target: str,
) -> None:
    """Apply one ``IssueToken`` outcome (token and lifetime, or error) and log it.

    The first failure of a run is a warning, repeats are debug lines, the recovery is
    an info line: an outage costs two lines, not one per retry.
    """
    if isinstance(outcome, BaseException):
        delay = renewal.failed(outcome, now=now, rand=random.random())
        code, _ = failure_text(target, outcome)
        level = logging.WARNING if renewal.failures == 1 else logging.DEBUG
        log.log(
            level,
            "token request failed; next attempt in %.1f s",
            delay,
            extra={"code": code.name, "client_id": client_id, "count": renewal.failures},
        )
        return
    failures = renewal.failures
    token, lifetime = outcome
    renewal.succeeded(token, requested_at=requested_at, lifetime=lifetime)
    if failures:
        log.info("token service reachable again", extra={"client_id": client_id})
    else:
        log.debug("access token renewed", extra={"client_id": client_id})


class StaticTokenBase:
    """What both flavours of ``StaticToken`` share: the check, the hiding ``repr``."""

    def __init__(self, token: str) -> None:
        self._token = check_token(token)

    def __repr__(self) -> str:
        return "StaticToken('***')"

    def invalidate(self, token: str) -> None:
        """Nothing to renew: a rejected static token stays rejected."""


@dataclass(frozen=True)
class ClientConfig:
    """The settings of a client-credentials source, checked (``repr`` hides the secret)."""

    endpoint: Endpoint
    client_id: str
    request: pb.IssueTokenRequest = field(repr=False)  # holds the client secret
    renew_before: float
    timeout: float
    clock: Clock = field(repr=False)

    @property
    def target(self) -> str:
        """The TokenService address."""
        return self.endpoint.target

    def describe(self) -> str:
        """The sources' ``repr``: target, client id, scopes, audience; never the secret."""
        return (
            f"ClientCredentials(target={self.target!r}, client_id={self.client_id!r}, "
            f"scopes={list(self.request.scopes)!r}, audience={self.request.audience!r})"
        )


class ClientCredentialsBase:
    """The constructor and ``repr`` both flavours of ``ClientCredentials`` share.

    Builds the checked :class:`ClientConfig` and the renewal timetable, then calls
    :meth:`_setup` for what the flavour needs (a channel, or nothing until a loop runs).
    The arguments are documented on the flavours' classes.
    """

    def __init__(
        self,
        target: str,
        client_id: str,
        client_secret: str,
        *,
        scopes: Sequence[str] = (),
        audience: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        renew_before: float = DEFAULT_RENEW_BEFORE,
        backoff: Backoff | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock = system_clock,
    ) -> None:
        backoff = backoff or Backoff()
        self._config = ClientConfig(
            endpoint=Endpoint(target, credentials, backoff),
            client_id=client_id,
            request=issue_request(client_id, client_secret, scopes, audience),
            renew_before=renew_before,
            timeout=timeout,
            clock=clock,
        )
        self._renewal = Renewal(backoff, renew_before=renew_before)
        self._setup()

    def __repr__(self) -> str:
        return self._config.describe()

    def _setup(self) -> None:
        """Set up the flavour's own state (called once, at the end of ``__init__``)."""

    def _record(self, outcome: tuple[str, int] | BaseException, requested_at: float) -> None:
        """Apply and log one ``IssueToken`` outcome (see :func:`record_outcome`)."""
        config = self._config
        record_outcome(
            self._renewal,
            outcome,
            requested_at=requested_at,
            now=config.clock(),
            client_id=config.client_id,
            target=config.target,
        )
