"""Initial metadata of ``WatchRevocations``: written by the service, read by verifiers.

Part of the wire contract (documented on the RPC in the proto): both sides import the
names from here.
"""

from __future__ import annotations

from typing import Final

BACKLOG_END_KEY: Final = "bearer-grpc-backlog-end"
"""Initial metadata of ``WatchRevocations``: the sequence of the last backlog event."""
EPOCH_KEY: Final = "bearer-grpc-epoch"
"""Initial metadata of ``WatchRevocations``: the opaque id of the server's store (its
revocation log). It stays the same across restarts on one store; a new store has a new one."""
CURSOR_KEY: Final = "bearer-grpc-cursor"
"""Initial metadata of ``WatchRevocations``: the highest revocation sequence the server has
read from its store."""
