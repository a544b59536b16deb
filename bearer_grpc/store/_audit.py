"""The audit trail in SQL: writing an event inside a change's transaction, reading pages.

A change and its event commit together or not at all: every store method that changes
something takes its event and writes it with :func:`write` on the same connection. The
trail is read newest first, by sequence, and pruned by age (``SqlStore.prune``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from bearer_grpc.store._errors import StoreError
from bearer_grpc.store._records import AuditEvent
from bearer_grpc.store._schema import audit_events


def write(conn: Connection, event: AuditEvent | None) -> AuditEvent | None:
    """Insert ``event`` (if any) on ``conn``; returns it with its sequence."""
    if event is None:
        return None
    values = {
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "detail": json.dumps(dict(event.detail), sort_keys=True, separators=(",", ":")),
    }
    key = conn.execute(insert(audit_events).values(values)).inserted_primary_key
    if key is None:
        raise StoreError("the database did not report the audit event's sequence")
    return AuditEvent(
        actor=event.actor,
        action=event.action,
        target=event.target,
        at=event.at,
        detail=event.detail,
        sequence=int(key[0]),
    )


def event(row: Row[Any]) -> AuditEvent:
    """The event an ``audit_events`` row holds."""
    detail = json.loads(row.detail) if row.detail else {}
    return AuditEvent(
        actor=row.actor,
        action=row.action,
        target=row.target,
        at=row.at,
        detail=detail if isinstance(detail, dict) else {},
        sequence=row.sequence,
    )


def newest(conn: Connection, before: int, limit: int) -> list[AuditEvent]:
    """Up to ``limit`` events with a sequence below ``before`` (0: any), newest first."""
    query = select(audit_events).order_by(audit_events.c.sequence.desc()).limit(limit)
    if before > 0:
        query = query.where(audit_events.c.sequence < before)
    return [event(row) for row in conn.execute(query)]
