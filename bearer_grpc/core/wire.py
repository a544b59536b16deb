"""Names on the wire that both ends depend on: metadata keys and ErrorInfo vocabulary.

These are part of the contract with clients and verifiers in any language (the proto
documents the ``WatchRevocations`` keys next to the RPC), so every module that reads or
writes one imports it from here.
"""

from __future__ import annotations

from typing import Final

from bearer_grpc.core.errors import TokenExpired, TokenRevoked

AUTHORIZATION: Final = "authorization"
"""The metadata key of the bearer credential (gRPC requires lower-case keys)."""

ERROR_DOMAIN: Final = "bearer-grpc"
"""``google.rpc.ErrorInfo.domain`` of every error bearer_grpc reports."""

STALE_TOKEN_REASONS: Final = frozenset({TokenExpired.reason, TokenRevoked.reason})
"""``ErrorInfo`` reasons that say the token itself went stale (expired or revoked): a
client may retry a unary call once with a fresh token."""

BACKLOG_END_KEY: Final = "bearer-grpc-backlog-end"
"""Initial metadata of ``WatchRevocations``: the sequence of the last backlog event."""

EPOCH_KEY: Final = "bearer-grpc-epoch"
"""Initial metadata of ``WatchRevocations``: the opaque id of the server's store (its
revocation log). It stays the same across restarts on one store; a new store has a new one."""

CURSOR_KEY: Final = "bearer-grpc-cursor"
"""Initial metadata of ``WatchRevocations``: the highest revocation sequence the server has
read from its store."""
