"""Verifying tokens: the verifiers and how they follow a TokenService.

A server interceptor asks its verifier two things: ``lookup(token)``, a cache hit that
never blocks, and ``verify(token)``, a full verification (a signature check in memory,
or a ``VerifyToken`` call in remote mode). Any object with ``verify`` will do
(:mod:`.protocol`); ``Verifier`` is ours:

- :mod:`.base`: the constructors both flavours share (``from_jwks``,
  ``from_token_service``, ``remote``) and :class:`~.base.TokenServiceLink`;
- :mod:`.verifier` / :mod:`.verifier_aio`: ``Verifier`` for sync and ``grpc.aio``
  servers, and when each starts and stops its background work;
- :mod:`.follower` / :mod:`.follower_aio`: the background work that keeps keys and
  revocations up to date (a daemon thread, or a task per event loop): fetch the keys,
  follow ``WatchRevocations`` to its end, prune, back off after failures, replace a
  silently dead connection;
- :mod:`.keys`, :mod:`.revocations`, :mod:`.remote`: the rules the followers apply to
  what the TokenService answers, free of I/O.

The state itself (trusted keys, revocation set, cache) is the pure
:class:`bearer_grpc.core.verification.LocalVerification`. Fail-closed rules and the
revocation stream protocol are described in docs/design/revocation-stream.md.
"""
