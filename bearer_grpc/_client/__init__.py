"""Sending tokens: token sources and the client interceptors (sync and asyncio).

A client gets its bearer token from a *token source* and sends it on every call as
``authorization: Bearer <token>``:

- :mod:`.sources` / :mod:`.sources_aio`: ``StaticToken`` (a token from elsewhere) and
  ``ClientCredentials`` (tokens from the TokenService's client-credentials grant,
  renewed ahead of expiry in a thread or a task, so calls never wait for a renewal;
  single-flight; capped jittered backoff while the TokenService is down);
- :mod:`.common`: what both flavours of the sources share (the ``IssueToken`` request
  and answer, error texts, the renewal bookkeeping; the timing rules themselves are
  the pure :mod:`bearer_grpc.core.renewal` and :mod:`bearer_grpc.core.backoff`);
- :mod:`.interceptor` / :mod:`.interceptor_aio`: ``BearerClientInterceptor`` (sets the
  one ``authorization`` entry; retries a unary call once when the server says its
  token expired or was revoked) and ``bearer_call_credentials``;
- :mod:`.metadata`: what both interceptors share (the metadata rewrite, the retry test).

Channels to the TokenService are opened and replaced by :mod:`bearer_grpc._channel`,
shared with the verifiers.
"""
