"""The ``Check`` servicer: Envoy's question in, the decision of the pure rules out.

Everything that decides is in :mod:`bearer_grpc.core.ext_authz`; this module reads the
request's path and headers out of the ``CheckRequest``, awaits the verifier on a cache
miss, and writes the answer as a ``CheckResponse``:

- allowed: status OK, the ``x-bearer-*`` headers set (replacing any the caller sent),
  the caller's other ``x-bearer-*`` headers removed. Envoy applies the headers it sets
  before those it removes, so a header is never in both lists.
- refused: the gRPC code as ``status``, and a denied response Envoy sends as it is: the
  HTTP status of that code (401, 403, 503), the terse message as body, the RFC 6750
  ``www-authenticate`` challenge and, for a gRPC call, ``grpc-status``, ``grpc-message``
  and ``grpc-status-details-bin`` (the same ``ErrorInfo`` as the interceptor's), which a
  gRPC client reads as the call's status.

Answers are built once and kept: per refusal (a few kinds), and per verified caller for
the last callers seen (a cache hit of the verifier returns the same ``Principal``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Final

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.type.v3 import http_status_pb2
from google.rpc import status_pb2

from bearer_grpc._status import http_status, to_status
from bearer_grpc._verifier.base import VerifierBase
from bearer_grpc._verifier.protocol_aio import SupportsVerify
from bearer_grpc._verifier.routes import IssuerRoutes
from bearer_grpc.authz.metrics import AuthzMetrics
from bearer_grpc.core.errors import AuthError, InsufficientScope
from bearer_grpc.core.ext_authz import (
    Allow,
    Deny,
    PendingCheck,
    decide,
    header_value,
    headers_of,
    is_grpc,
)
from bearer_grpc.core.policy import Policy
from bearer_grpc.core.tokens import Principal

SERVICE_NAME: Final = pb.DESCRIPTOR.services_by_name["Authorization"].full_name
"""``envoy.service.auth.v3.Authorization``."""
MAX_KEPT_ANSWERS: Final = 4096
"""Most answers kept for reuse (to verified callers; refusals); each set starts over when
full."""

_OVERWRITE: Final = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_OK: Final = status_pb2.Status(code=0)
_PUBLIC: Final = pb.CheckResponse(status=_OK, ok_response=pb.OkHttpResponse())


def _no_lookup(token: str) -> None:
    return None


class AuthorizationServicer:
    """Answers Envoy's ``Check`` with a verifier and a policy.

    Args:
        verifier: ``bearer_grpc.aio.Verifier`` (or any object with ``async def
            verify(token)``; its ``lookup`` is used when it has one).
        policy: The access rules.
        metrics: Where decisions are counted (a new :class:`AuthzMetrics` when None).
    """

    def __init__(
        self, verifier: SupportsVerify, policy: Policy, metrics: AuthzMetrics | None = None
    ) -> None:
        self._verify = verifier.verify
        self._lookup = getattr(verifier, "lookup", _no_lookup)
        # The header shortcut is only for caches of exactly verified b64tokens: ours.
        self._exact = isinstance(verifier, VerifierBase | IssuerRoutes)
        self._policy = policy
        self.metrics = metrics if metrics is not None else AuthzMetrics()
        self._allowed: dict[int, tuple[Principal, pb.CheckResponse]] = {}
        self._denied: dict[tuple[Any, ...], pb.CheckResponse] = {}

    def __repr__(self) -> str:
        return f"AuthorizationServicer({self._policy!r})"

    async def Check(
        self, request: pb.CheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CheckResponse:
        """Decide whether Envoy forwards one request."""
        http = request.attributes.request.http
        raw = http.header_map.headers
        headers: Sequence[tuple[str, str]]
        if raw:  # Envoy's encode_raw_headers: every entry apart, values as bytes
            headers = [(h.key, h.value or h.raw_value.decode("latin-1")) for h in raw]
            content_type = next((v for k, v in headers if k == "content-type"), "")
        else:
            headers = headers_of(http.headers)
            content_type = http.headers.get("content-type", "")
        answer = decide(
            self._policy,
            http.path,
            headers,
            self._lookup,
            grpc=is_grpc(content_type),
            shortcut=self._exact,
        )
        if isinstance(answer, PendingCheck):
            try:
                verified: Principal | AuthError = await self._verify(answer.token)
            except AuthError as err:
                verified = err
            answer = answer.finish(verified)
        self.metrics.count(answer)
        if isinstance(answer, Deny):
            return self._refusal(answer)
        return self._allowance(answer)

    def _allowance(self, answer: Allow) -> pb.CheckResponse:
        principal = answer.principal
        reusable = not answer.strays
        if reusable:
            if principal is None:
                return _PUBLIC
            kept = self._allowed.get(id(principal))
            if kept is not None and kept[0] is principal:
                return kept[1]
        response = pb.CheckResponse(
            status=_OK,
            ok_response=pb.OkHttpResponse(
                headers=[
                    base_pb2.HeaderValueOption(
                        header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
                    )
                    for key, value in answer.headers
                ],
                headers_to_remove=answer.remove,
            ),
        )
        if reusable and principal is not None:
            if len(self._allowed) >= MAX_KEPT_ANSWERS:
                self._allowed.clear()
            self._allowed[id(principal)] = (principal, response)
        return response

    def _refusal(self, answer: Deny) -> pb.CheckResponse:
        error = answer.error
        scopes = error.required_scopes if isinstance(error, InsufficientScope) else ()
        key = (type(error), error.message, scopes, answer.grpc)
        response = self._denied.get(key)
        if response is None:
            if len(self._denied) >= MAX_KEPT_ANSWERS:  # a verifier's own messages may vary
                self._denied.clear()
            response = self._denied[key] = denied_response(answer)
        return response


def denied_response(answer: Deny) -> pb.CheckResponse:
    """The ``CheckResponse`` refusing a request (see the module's documentation)."""
    status = to_status(answer.error)
    code = status.code.value[0]
    headers: list[tuple[str, str]] = []
    for key, value in status.trailing_metadata:
        if key == "www-authenticate" and isinstance(value, str):
            headers.append((key, value))
        elif answer.grpc and isinstance(value, bytes):
            headers.append((key, base64.b64encode(value).decode("ascii")))
    if answer.grpc:
        headers += [
            ("grpc-status", str(code)),
            ("grpc-message", header_value(status.details)),
            ("content-type", "application/grpc"),
        ]
    else:
        headers.append(("content-type", "text/plain; charset=utf-8"))
    return pb.CheckResponse(
        status=status_pb2.Status(code=code, message=status.details),
        denied_response=pb.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=http_status(status.code)),
            headers=[
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE
                )
                for key, value in headers
            ],
            body=status.details,
        ),
    )
