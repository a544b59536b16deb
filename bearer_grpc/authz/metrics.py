"""Prometheus metrics of ``bearer-grpc authz``: one counter of decisions.

``bearer_grpc_authz_checks_total{decision, reason}``: ``decision`` is ``allowed``,
``public`` or ``denied``; ``reason`` is ``none``, or for a refusal the ``ErrorInfo``
reason in lower case (``token_missing``, ``token_revoked``, ``insufficient_scope``, ...)
or ``forbidden`` (a path not in normal form, or a method a strict policy does not name).
Labels come from these fixed sets only: never a subject, token or path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

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
    """What ``bearer-grpc authz`` counts; served with :meth:`start_http`.

    Counting is a plain integer increment on the event loop's thread (a Prometheus
    counter takes a lock on every increment); the counts are read at scrape time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str], int] = dict.fromkeys(_LABELS, 0)
        self.registry.register(_Counts(self.counts))

    def count(self, answer: Allow | Deny) -> None:
        """Count one answered ``Check``."""
        if isinstance(answer, Allow):
            self.counts[_PUBLIC if answer.principal is None else _ALLOWED] += 1
            return
        error = answer.error
        reason = error.reason.lower() if isinstance(error, AuthError) else "forbidden"
        key = ("denied", reason)
        self.counts[key if key in self.counts else ("denied", "forbidden")] += 1


_ALLOWED: Final = ("allowed", "none")
_PUBLIC: Final = ("public", "none")
_LABELS: Final = (_ALLOWED, _PUBLIC, *(("denied", reason) for reason in DENIAL_REASONS))


class _Counts(Collector):
    """Reads the counts at scrape time."""

    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self.counts = counts

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "bearer_grpc_authz_checks",
            "Check requests answered, by decision (allowed, public, denied) and reason.",
            labels=("decision", "reason"),
        )
        for labels, value in list(self.counts.items()):
            family.add_metric(labels, value)
        yield family
