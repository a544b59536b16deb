"""A store written by the release before schema version 3 keeps working after the upgrade.

The database is built exactly as versions 1 and 2 built it (their migration steps), with
rows that release wrote: a client, a user, a revocation. Opening it migrates it: the
accounts keep their credentials (with no previous secret), the audit trail starts empty,
and the new columns and table work.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, inspect, select

from bearer_grpc.store import AccountKind, AuditEvent, open_store
from bearer_grpc.store._migrations import LATEST_VERSION, MIGRATIONS
from bearer_grpc.store._schema import accounts, revocations, schema_migrations

NOW = 1_800_000_000


def _version_2_store(engine: Engine) -> None:
    with engine.begin() as conn:
        schema_migrations.create(conn)
        for step in MIGRATIONS[:2]:
            step.apply(conn)
            conn.execute(
                insert(schema_migrations).values(version=step.version, description=step.description)
            )
        for name, kind, credential in (("svc", "client", "hmac-sha256$" + "1" * 64),
                                       ("alice", "user", "scrypt$...")):  # fmt: skip
            conn.execute(
                insert(accounts).values(
                    name=name,
                    kind=kind,
                    credential_hash=credential,
                    scopes="orders.read",
                    audiences="orders",
                    created_at=NOW - 1000,
                    id=f"id-{name}",
                    certificate_bound=False,
                )
            )
        conn.execute(insert(revocations).values(jti="old", expires_at=NOW + 60, revoked_at=NOW))


def test_a_version_2_store_is_migrated_and_keeps_working(
    store_url: str, raw_engine: Engine
) -> None:
    assert LATEST_VERSION == 3
    _version_2_store(raw_engine)
    assert "audit_events" not in inspect(raw_engine).get_table_names()
    store = open_store(store_url)
    try:
        with raw_engine.connect() as conn:
            versions = conn.execute(select(schema_migrations.c.version)).scalars().all()
        assert sorted(versions) == [1, 2, 3]

        svc = store.get_account("svc", AccountKind.CLIENT)
        assert svc is not None
        assert svc.credential_hash == "hmac-sha256$" + "1" * 64
        assert (svc.previous_credential_hash, svc.previous_valid_until) == ("", 0)
        assert store.audit_events() == []
        [old] = store.revocations_after(0)
        assert old.jti == "old"

        event = AuditEvent("ops", "client.rotate_secret", "svc", NOW, {"until": NOW + 60})
        rotated = store.set_credential(
            "svc", AccountKind.CLIENT, "hmac-sha256$" + "2" * 64,
            previous_valid_until=NOW + 60, audit=event,
        )  # fmt: skip
        assert rotated is not None
        assert rotated.previous_credential_hash == "hmac-sha256$" + "1" * 64
        [written] = store.audit_events()
        assert (written.actor, written.target, dict(written.detail)) == (
            "ops",
            "svc",
            {"until": NOW + 60},
        )
        alice = store.get_account("alice", AccountKind.USER)
        assert alice is not None and alice.id == "id-alice"
    finally:
        store.close()
