"""The TokenService over gRPC (``grpc.aio``): translation only.

The rules are in :mod:`bearer_grpc.service.authority`.

Blocking work (the store, password hashing) runs in worker threads, password checks on
the authority's password pool; verification and key publication are in-memory and run
on the event loop. The servicer hands the authority the caller's address
(``context.peer()``) and, over mTLS, its certificate, as data. Every call ends with one
structured log line (method, peer, code, duration; never a token or secret).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import struct_pb2

from bearer_grpc._status import abort_async, status_code
from bearer_grpc.core.errors import (
    AuthError,
    InvalidRequest,
    ServiceError,
    TokenMissing,
    Unavailable,
)
from bearer_grpc.core.header import bearer_token
from bearer_grpc.core.tokens import Principal
from bearer_grpc.core.wire import BACKLOG_END_KEY, CURSOR_KEY, EPOCH_KEY
from bearer_grpc.service import watching
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.grants import (
    ClientCredentialsGrant,
    Grant,
    Issued,
    PasswordGrant,
    RefreshGrant,
)
from bearer_grpc.service.metrics import ServiceMetrics
from bearer_grpc.service.revocations import RevocationNotifier
from bearer_grpc.v1 import token_service_pb2 as pb
from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

access_log = logging.getLogger("bearer_grpc.access")
log = logging.getLogger("bearer_grpc.service")

SERVICE_NAME: Final = "bearer_grpc.v1.TokenService"
_R = TypeVar("_R")
_ANSWERS_KEPT: Final = 1024
"""VerifyToken answers kept for reuse (the busiest tokens; about 1 KiB each)."""
Context = grpc.aio.ServicerContext[Any, Any]


def _log_call(
    method: str,
    peer: str,
    started: float,
    code: grpc.StatusCode,
    level: int = logging.INFO,
    **extra: Any,
) -> None:
    access_log.log(
        level,
        "call",
        extra={
            "method": method,
            "peer": peer,
            "code": code.name,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            **extra,
        },
    )


async def _unary(
    method: str,
    context: Context,
    work: Callable[[], Awaitable[_R]],
    *,
    ok_level: int = logging.INFO,
) -> _R:
    """Run ``work`` as one RPC: errors become statuses, and the call gets an access line.

    ``ok_level`` is the level of the line for a call that ends OK: VerifyToken's are
    DEBUG, as the hot read path of every remote verifier (the metrics count them); a call
    that ends in an error is always logged at INFO.
    """
    started = time.perf_counter()
    peer = context.peer()
    try:
        result = await work()
    except (AuthError, ServiceError) as err:
        reason = err.reason if isinstance(err, AuthError) else None
        _log_call(method, peer, started, status_code(err), reason=reason)
        await abort_async(context, err)
        raise AssertionError("unreachable") from err
    except Exception:
        _log_call(method, peer, started, grpc.StatusCode.INTERNAL)
        log.exception("internal error", extra={"method": method})
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise
    if access_log.isEnabledFor(ok_level):
        _log_call(method, peer, started, grpc.StatusCode.OK, ok_level)
    return result


class TokenServiceServicer(pb_grpc.TokenServiceServicer):
    """Serves the TokenService RPCs for one :class:`TokenAuthority`.

    Args:
        authority: The rules and state.
        notifier: Wakes revocation watchers; the server's sync loop notifies it too.
        watch_poll: Longest a watcher waits without a notification before re-reading
            the in-memory log (a safety net; notifications normally wake it at once).
        metrics: Where calls are counted (a new :class:`ServiceMetrics` when None).

    Attributes:
        metrics: The service's metrics (serve them with ``metrics.start_http``).
    """

    def __init__(
        self,
        authority: TokenAuthority,
        notifier: RevocationNotifier,
        *,
        watch_poll: float = 5.0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._authority = authority
        self._notifier = notifier
        self._watch_poll = watch_poll
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self.metrics.track_cache(lambda: authority.cache)
        self._answers = _ActiveAnswers()
        settings = authority.settings
        self._streams = watching.StreamLimits(
            settings.watch_streams, settings.watch_streams_per_peer
        )

    def close(self) -> None:
        """End every WatchRevocations stream (OK) so watchers reconnect elsewhere."""
        self._notifier.close()

    def shutdown(self) -> None:
        """Release the password-check threads (once in-flight calls have finished)."""
        self._authority.close()

    async def issue(
        self,
        grant: Grant,
        scopes: Sequence[str],
        audience: str,
        *,
        peer: str,
        certificate: bytes | None,
    ) -> Issued:
        """Issue as IssueToken does, with the same sign-in limits and password pool.

        The HTTP face issues through here.
        """
        try:
            return await self._authority.issue_async(
                grant, scopes=scopes, audience=audience, peer=peer, certificate=certificate
            )
        finally:
            self._revocations_changed()  # refresh-token reuse revokes a family

    def _revocations_changed(self) -> None:
        self._notifier.notify(self._authority.revocations.cursor)

    async def IssueToken(
        self, request: pb.IssueTokenRequest, context: Context
    ) -> pb.IssueTokenResponse:
        """Issue an access token (see the proto)."""

        async def work() -> pb.IssueTokenResponse:
            kind = request.WhichOneof("grant") or "none"
            try:
                issued = await self._authority.issue_async(
                    _grant(request),
                    scopes=list(request.scopes),
                    audience=request.audience,
                    peer=context.peer(),
                    certificate=_client_certificate(context),
                )
            except Exception as err:
                self.metrics.issued(kind, err)
                if isinstance(err, Unavailable):
                    self.metrics.store_error("issue")
                raise
            finally:
                self._revocations_changed()  # refresh-token reuse revokes a family
            self.metrics.issued(kind, None)
            return pb.IssueTokenResponse(
                access_token=issued.access.token,
                token_type="Bearer",  # noqa: S106 (the scheme name)
                expires_in=issued.lifetime,
                scopes=issued.scopes,
                refresh_token=issued.refresh_token,
                refresh_expires_in=issued.refresh_lifetime,
            )

        return await _unary("IssueToken", context, work)

    async def VerifyToken(
        self, request: pb.VerifyTokenRequest, context: Context
    ) -> pb.VerifyTokenResponse:
        """Introspect a token: OK with ``active=false`` and a reason when it is not valid."""

        async def work() -> pb.VerifyTokenResponse:
            started = time.perf_counter()
            try:
                response, refused = self._introspect(request)
            except Exception as err:
                self.metrics.verification(err, time.perf_counter() - started)
                raise
            self.metrics.verification(refused, time.perf_counter() - started)
            return response

        return await _unary("VerifyToken", context, work, ok_level=logging.DEBUG)

    def _introspect(
        self, request: pb.VerifyTokenRequest
    ) -> tuple[pb.VerifyTokenResponse, AuthError | None]:
        """The VerifyToken answer, and the error that made the token inactive (if any)."""
        if not request.token:
            raise InvalidRequest("token is required")
        if not request.audience:
            raise InvalidRequest("audience is required")
        try:
            principal = self._authority.verify(
                request.token,
                audience=request.audience,
                required_scopes=request.required_scopes,
            )
        except AuthError as err:
            return pb.VerifyTokenResponse(active=False, reason=err.reason), err
        return self._answers.active(principal), None

    async def RevokeToken(
        self, request: pb.RevokeTokenRequest, context: Context
    ) -> pb.RevokeTokenResponse:
        """Revoke a token by value (possession suffices) or by id (own token, or admin)."""

        async def work() -> pb.RevokeTokenResponse:
            target = request.WhichOneof("target")
            try:
                if target == "token":
                    sequence = await asyncio.to_thread(self._authority.revoke_token, request.token)
                elif target == "token_id":
                    caller = _caller_token(context)
                    sequence = await asyncio.to_thread(
                        self._authority.revoke_token_id, request.token_id, caller_token=caller
                    )
                else:
                    raise InvalidRequest("token or token_id is required")
            except Unavailable:
                self.metrics.store_error("revoke")
                raise
            self.metrics.revocation_accepted(target)
            self._revocations_changed()
            return pb.RevokeTokenResponse(sequence=sequence)

        return await _unary("RevokeToken", context, work)

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.GetJwksResponse:
        """Publish the public keys and the issuer name."""

        async def work() -> pb.GetJwksResponse:
            return pb.GetJwksResponse(
                jwks_json=self._authority.jwks(), issuer=self._authority.settings.issuer
            )

        return await _unary("GetJwks", context, work)

    async def WatchRevocations(
        self, request: pb.WatchRevocationsRequest, context: Context
    ) -> AsyncIterator[pb.WatchRevocationsResponse]:
        """Stream revocations after ``after_sequence``, then follow new ones until cancelled.

        See :mod:`bearer_grpc.service.watching`.
        """
        # The context is only touched before the first yield: the generator's cleanup may
        # run after grpc freed the call (touching it then crashes the process).
        started, peer = time.perf_counter(), context.peer()
        try:
            watching.check_request(request)
            slot = self._streams.acquire(peer)
        except ServiceError as error:
            _log_call("WatchRevocations", peer, started, status_code(error))
            await abort_async(context, error)
        cursor = request.after_sequence
        log_, notifier, metrics = self._authority.revocations, self._notifier, self.metrics
        clock = self._authority.clock
        end = max(cursor, log_.newest)
        restarts = notifier.restarts
        metrics.watch_opened()
        try:
            await context.send_initial_metadata(
                (
                    (BACKLOG_END_KEY, str(end)),
                    (EPOCH_KEY, self._authority.epoch),
                    (CURSOR_KEY, str(log_.cursor)),
                )
            )
            while not notifier.closing and notifier.restarts == restarts:
                seen = notifier.generation  # before reading: a wake-up while sending counts
                page = log_.after(cursor, limit=watching.PAGE)
                for revocation in page:
                    if notifier.closing or notifier.restarts != restarts:
                        break
                    if revocation.sequence > end:  # live, not the backlog asked for
                        metrics.revocation_delivered(clock() - revocation.revoked_at)
                    yield watching.event_message(revocation)
                    cursor = revocation.sequence
                if len(page) < watching.PAGE:
                    await notifier.wait(seen, self._watch_poll)
        finally:
            self._streams.release(slot)
            metrics.watch_closed()
            ended = notifier.closing or notifier.restarts != restarts
            code = grpc.StatusCode.OK if ended else grpc.StatusCode.CANCELLED
            _log_call("WatchRevocations", peer, started, code)


class _ActiveAnswers:
    """The ``active=true`` VerifyToken answer of recently verified principals.

    Building the answer (its ``claims`` Struct above all) costs more than the cached
    verification it reports. The answer depends on nothing but the principal, and the
    authority's cache hands out the same principal object for every hit that passed its
    checks, so the answer is kept by that object's identity (the entry holds the object,
    so its id cannot be reused while kept). Bounded; used from the event loop only.
    The messages are never modified after they are built.
    """

    def __init__(self, max_size: int = _ANSWERS_KEPT) -> None:
        self._max_size = max_size
        self._answers: dict[int, tuple[Principal, pb.VerifyTokenResponse]] = {}

    def active(self, principal: Principal) -> pb.VerifyTokenResponse:
        """The answer for ``principal``, built once while it stays in use."""
        entry = self._answers.get(id(principal))
        if entry is not None and entry[0] is principal:
            return entry[1]
        claims = struct_pb2.Struct()
        claims.update(dict(principal.claims))
        answer = pb.VerifyTokenResponse(
            active=True,
            subject=principal.subject,
            scopes=sorted(principal.scopes),
            audience=principal.audience,
            issuer=principal.issuer,
            token_id=principal.token_id,
            issued_at=principal.issued_at,
            expires_at=principal.expires_at,
            claims=claims,
            client_id=principal.client_id,
        )
        answers = self._answers
        if len(answers) >= self._max_size:
            del answers[next(iter(answers))]  # the oldest
        answers[id(principal)] = (principal, answer)
        return answer


def _grant(request: pb.IssueTokenRequest) -> Grant:
    kind = request.WhichOneof("grant")
    if kind == "client_credentials":
        cc = request.client_credentials
        return ClientCredentialsGrant(cc.client_id, cc.client_secret)
    if kind == "password":
        return PasswordGrant(request.password.username, request.password.password)
    if kind == "refresh_token":
        return RefreshGrant(request.refresh_token.refresh_token)
    raise InvalidRequest("grant is required")


def _client_certificate(context: Context) -> bytes | None:
    """The PEM certificate the caller presented over mTLS, or None."""
    first = next(iter(context.auth_context().get("x509_pem_cert", ())), None)
    return bytes(first) if first is not None else None


def _caller_token(context: Context) -> str | None:
    try:
        return bearer_token(context.invocation_metadata())
    except TokenMissing:
        return None


def add_to_server(servicer: TokenServiceServicer, server: grpc.aio.Server) -> None:
    """Register the servicer on an aio server."""
    pb_grpc.add_TokenServiceServicer_to_server(servicer, server)
