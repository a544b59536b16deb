"""The audit trail's vocabulary: who did what to what.

Events are written by the store in the same transaction as the change, and logged as one
JSON line each once committed.

An event names its actor (the admin caller's subject, :data:`LOCAL_CLI` for a command run
on the store itself, :data:`TOKEN_HOLDER` for a token revoked by value,
:data:`TOKEN_SERVICE` for what the service does by itself: a refresh family revoked on
reuse, a first or a scheduled key, a retired key deleted, keys sealed), an action (the
``*_ACTION`` names below), a target (a name, kid, token id or family id) and JSON-ready
details. No secret, password or token is ever put in one: details carry names, scopes,
audiences, algorithms and times only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from bearer_grpc.store import AuditEvent

audit_log = logging.getLogger("bearer_grpc.audit")

LOCAL_CLI: Final = "local CLI"
"""The actor of a change made by a command run on the store itself (``--data-dir``)."""
TOKEN_SERVICE: Final = "token service"  # noqa: S105 (an actor name)
"""The actor of what the service does by itself: revoking a refresh family whose rotated
token was presented again, creating the first key or a scheduled one, deleting a retired
key, and sealing keys stored in the clear."""
TOKEN_HOLDER: Final = "token holder"  # noqa: S105 (an actor name)
"""The actor of a token revoked by value, where possession is the only credential."""

CLIENT_CREATE: Final = "client.create"
CLIENT_UPDATE: Final = "client.update"
CLIENT_ROTATE_SECRET: Final = "client.rotate_secret"  # noqa: S105 (an action name)
CLIENT_DELETE: Final = "client.delete"
USER_CREATE: Final = "user.create"
USER_SET_PASSWORD: Final = "user.set_password"  # noqa: S105 (an action name)
USER_DELETE: Final = "user.delete"
KEY_ROTATE: Final = "key.rotate"
KEY_WITHDRAW: Final = "key.withdraw"
KEY_RETIRE: Final = "key.retire"
KEY_SEAL: Final = "key.seal"
SUBJECT_REVOKE: Final = "subject.revoke"
TOKEN_REVOKE: Final = "token.revoke"  # noqa: S105 (an action name)
FAMILY_REVOKE: Final = "family.revoke"


def event(
    actor: str, action: str, target: str, at: int, detail: Mapping[str, object] | None = None
) -> AuditEvent:
    """An event to hand to the store with its change."""
    return AuditEvent(actor=actor, action=action, target=target, at=at, detail=dict(detail or {}))


def logged(written: AuditEvent) -> None:
    """Log a committed event as one line (``bearer_grpc.audit``, INFO).

    The line holds actor, action, target and details, through the JSON formatter's
    allow-list.
    """
    audit_log.info(
        "audit",
        extra={
            "actor": written.actor,
            "action": written.action,
            "target": written.target,
            "detail": dict(written.detail),
        },
    )
