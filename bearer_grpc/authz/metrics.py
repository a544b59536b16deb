"""Prometheus metrics of ``bearer-grpc authz``: one counter of decisions.

``bearer_grpc_authz_checks_total{decision, reason}``: ``decision`` is ``allowed``,
``public`` or ``denied``; ``reason`` is ``none``, or for a refusal the ``ErrorInfo``
reason in lower case (``token_missing``, ``token_revoked``, ``insufficient_scope``, ...)
or ``forbidden`` (a path not in normal form, or a method a strict policy does not name).
Labels come from these fixed sets only: never a subject, token or path. Counting costs
one increment of a label child resolved here.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

from bearer_grpc.core.errors import (
    AuthError,
    InsufficientScope,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
    VerifierUnavailable,
)
from bearer_grpc.core.ext_authz import Allow, Deny
from bearer_grpc.service.process import MetricsEndpoint

_DENIED: Final = (
    TokenMissing,
    TokenMalformed,
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    InsufficientScope,
    VerifierUnavailable,
)
DENIAL_REASONS: Final = (*(cls.reason.lower() for cls in _DENIED), "forbidden")
"""``reason`` label values of refusals."""


class AuthzMetrics(MetricsEndpoint):
    """What ``bearer-grpc authz`` counts; served with :meth:`start_http`."""

    def __init__(self) -> None:
        super().__init__()
        checks = Counter(
            "bearer_grpc_authz_checks",
            "Check requests answered, by decision (allowed, public, denied) and reason.",
            ("decision", "reason"),
            registry=self.registry,
        )
        self._allowed = checks.labels("allowed", "none")
        self._public = checks.labels("public", "none")
        self._denied = {reason: checks.labels("denied", reason) for reason in DENIAL_REASONS}

    def count(self, answer: Allow | Deny) -> None:
        """Count one answered ``Check``."""
        if isinstance(answer, Allow):
            (self._public if answer.principal is None else self._allowed).inc()
            return
        error = answer.error
        reason = error.reason.lower() if isinstance(error, AuthError) else "forbidden"
        self._denied.get(reason, self._denied["forbidden"]).inc()
