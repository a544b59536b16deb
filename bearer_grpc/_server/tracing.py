"""What the server interceptors add to OpenTelemetry spans; OpenTelemetry stays optional.

A service traced with ``opentelemetry-instrumentation-grpc`` puts the instrumentation's
server interceptor before ours: it opens one server span per call, and records the gRPC
code a refusal ends with (``rpc.grpc.status_code``: 16 UNAUTHENTICATED, 7
PERMISSION_DENIED), since our aborts set the code and details before they end the call.
Both interceptors, sync and asyncio, call the two hooks here, which add to the span that
is current when the call runs:

- :func:`refused`: the event :data:`REFUSED_EVENT` with the ``ErrorInfo`` reason
  (:data:`REASON_ATTRIBUTE`) and the gRPC code; every refusal, at the point it is made.
- :func:`accepted`: the caller's subject as ``enduser.id``, only when the interceptor was
  built with ``trace_subject=True`` (off by default: a subject is personal data).

Nothing else is written: never the token, its claims or its id. The status description
the instrumentation records is the refusal's public message, which never holds one.

Cost: this module never imports OpenTelemetry. If the process has not imported
``opentelemetry.trace`` (no instrumentation, or the package is not installed), no span can
exist, and a hook returns after one dictionary lookup; otherwise it returns as soon as
the current span is not recording. Accepted calls do not call a hook at all unless the
subject is traced.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Final, cast

from bearer_grpc._status import status_code
from bearer_grpc.core.errors import AuthError
from bearer_grpc.core.tokens import Principal

if TYPE_CHECKING:
    from opentelemetry.trace import Span

REFUSED_EVENT: Final = "bearer_grpc.refused"
"""Name of the span event of a refused call."""
REASON_ATTRIBUTE: Final = "bearer_grpc.reason"
"""The refusal event's attribute holding the ``ErrorInfo`` reason (``TOKEN_EXPIRED``...)."""
CODE_ATTRIBUTE: Final = "rpc.grpc.status_code"
"""The refusal event's attribute holding the numeric gRPC code the call ends with."""
SUBJECT_ATTRIBUTE: Final = "enduser.id"
"""The span attribute holding an accepted caller's subject (opt-in)."""
_TRACE_MODULE: Final = "opentelemetry.trace"


def _recording_span() -> Span | None:
    """The current span if it records, without importing OpenTelemetry."""
    trace = sys.modules.get(_TRACE_MODULE)
    if trace is None:
        return None
    span = cast("Span", trace.get_current_span())
    return span if span.is_recording() else None


def refused(error: AuthError) -> None:
    """Record a refusal on the current span: the event :data:`REFUSED_EVENT`."""
    span = _recording_span()
    if span is not None:
        span.add_event(
            REFUSED_EVENT,
            {REASON_ATTRIBUTE: error.reason, CODE_ATTRIBUTE: status_code(error).value[0]},
        )


def accepted(principal: Principal) -> None:
    """Record the accepted caller's subject on the current span.

    Call it only when the service opted in.
    """
    span = _recording_span()
    if span is not None:
        span.set_attribute(SUBJECT_ATTRIBUTE, principal.subject)
