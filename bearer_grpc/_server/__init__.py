"""Protecting a server: the server interceptors (sync and asyncio) and the caller they bind.

- :mod:`.interceptor` / :mod:`.interceptor_aio`: ``BearerServerInterceptor`` for
  ``grpc.server`` and ``grpc.aio.server``: the same rules, differing only in how they
  wait for a verification and abort a call;
- :mod:`.routing`: what both share: the admission of a call up to its first wait, the
  handler that serves it (same kind, same serializers), unknown methods, strict
  policies;
- :mod:`.binding`: certificate-bound tokens (RFC 8705): the call's client certificate,
  from the TLS connection or a trusted proxy header, against the token's ``cnf``;
- :mod:`.principal`: ``current_principal()``, bound inside the wrapped handler;
- :mod:`.tracing`: what a refusal (an event with its reason) and, on request, an
  accepted call (its subject) add to the OpenTelemetry span of the call, without
  importing OpenTelemetry.

Where the work happens. ``intercept_service`` decides everything that needs no I/O:
public methods pass through untouched; every refusal and every cache hit is decided
there, without crypto. A cache miss is verified in the wrapped handler (on the worker
thread, or in the call's task) before the application's behaviour starts, so before a
streaming request is read. Handlers that only refuse parse nothing the caller sent.
Refusals set the code and details first (so tracing interceptors record them), then
abort with the rich status of :mod:`bearer_grpc._status`; a refusal behaviour has the
shape of its method's kind (an async generator for streamed responses on asyncio), so an
outer interceptor that wraps behaviours by their kind, as OpenTelemetry's does, runs it.

Unknown methods: without a valid token the caller gets UNAUTHENTICATED, as for any
method, so methods cannot be probed; with one, UNIMPLEMENTED.

Certificate-bound tokens: the wrapped handler checks the binding on every call, cache
hit or not (the certificate belongs to the connection, not to the token), after the
verification and the scopes, before the behaviour; unknown methods check it too. The
unary cache-hit path of an unbound token on a method that does not require binding does
no extra work. See docs/certificate-bound.md.

Long-lived streams: a token is valid for a stream only while it is valid. Once its
``exp + leeway`` has passed or its ``jti`` was revoked, the stream ends UNAUTHENTICATED
(``TOKEN_EXPIRED`` or ``TOKEN_REVOKED``) at its next message, in either direction; a
stream that sends nothing is not interrupted (bound idle streams with deadlines).

Strict policies refuse to start with a method no rule covers
(``check_services``); at run time the first call of such a method raises
:class:`~bearer_grpc.PolicyError` in ``intercept_service`` (grpc answers UNKNOWN).

The argument for the cache-hit shortcut is in docs/design/admission.md, the mid-stream
policy in docs/design/streams.md.
"""
