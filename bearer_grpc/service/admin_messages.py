"""The AdminService's messages from the store's records, without any secret.

What an operator may see of a client, user, key, revocation or audit event (never a
secret, hash or private key).
"""

from __future__ import annotations

import json

from bearer_grpc.service.admin import KeyState
from bearer_grpc.store import Account, AuditEvent, KeyRecord, Revocation
from bearer_grpc.v1 import admin_service_pb2 as pb


def client_message(account: Account) -> pb.Client:
    """The admin API's view of a client (never its secret)."""
    return pb.Client(
        name=account.name,
        scopes=account.scopes,
        audiences=account.audiences,
        created_at=account.created_at,
        certificate_bound=account.certificate_bound,
        previous_secret_valid_until=account.previous_valid_until,
    )


def user_message(account: Account) -> pb.User:
    """The admin API's view of a user (never its password)."""
    return pb.User(
        name=account.name,
        scopes=account.scopes,
        audiences=account.audiences,
        created_at=account.created_at,
    )


def key_message(record: KeyRecord, state: KeyState) -> pb.Key:
    """A key's public facts and state."""
    return pb.Key(kid=record.kid, alg=record.alg, state=state.value, not_before=record.not_before)


def revocation_message(revocation: Revocation) -> pb.Revocation:
    """An entry of the revocation log."""
    return pb.Revocation(
        sequence=revocation.sequence,
        kind=revocation.kind.value,
        token_id=revocation.jti if revocation.kind.value == "token" else "",
        target=revocation.target,
        revoked_at=revocation.revoked_at,
        expires_at=revocation.expires_at,
        not_before=revocation.not_before,
    )


def event_message(event: AuditEvent) -> pb.AuditEvent:
    """An audit event."""
    return pb.AuditEvent(
        sequence=event.sequence,
        time=event.at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        detail_json=json.dumps(dict(event.detail), sort_keys=True, separators=(",", ":")),
    )


def key_position(pair: tuple[KeyRecord, KeyState]) -> str:
    """A key's place in the list of keys, as a page token names it."""
    return f"{pair[0].not_before:020d}/{pair[0].kid}"
