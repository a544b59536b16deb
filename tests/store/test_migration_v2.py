"""A store written by the release before schema version 2 keeps working after the upgrade.

The database is built exactly as version 1 did (its frozen tables), with rows the old
release wrote: a user, a refresh family with its access-token ids, a revocation. Opening
it migrates it; then logins, rotation, reuse detection and the revocation log work.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from bearer_grpc.core.verification import RevocationKind
from bearer_grpc.store import AccountKind, RefreshToken, RotationStatus, open_store
from bearer_grpc.store import _schema_v1 as v1
from bearer_grpc.store._migrations import LATEST_VERSION
from bearer_grpc.store._schema import schema_migrations

NOW = 1_800_000_000


def _version_1_store(engine: Engine) -> None:
    with engine.begin() as conn:
        v1.metadata.create_all(conn)
        schema_migrations.create(conn)
        conn.execute(insert(schema_migrations).values(version=1, description="create tables"))
        conn.execute(
            insert(v1.accounts).values(
                name="alice",
                kind="user",
                credential_hash="scrypt$...",
                scopes="orders.read",
                audiences="orders",
                created_at=NOW - 1000,
            )
        )
        for token_hash, issued_at, used in (("t0", NOW - 900, True), ("t1", NOW - 800, False)):
            conn.execute(
                insert(v1.refresh_tokens).values(
                    token_hash=token_hash,
                    family_id="old-family",
                    subject="alice",
                    client_id="bearer-grpc",
                    scopes="orders.read",
                    audience="orders",
                    issued_at=issued_at,
                    expires_at=NOW + 3600,
                    access_jti=f"at-{token_hash}",
                    access_expires_at=NOW + 300,
                    used=used,
                    revoked=False,
                )
            )
        conn.execute(
            insert(v1.revocations).values(jti="old-jti", expires_at=NOW + 60, revoked_at=NOW)
        )


def test_a_version_1_store_is_migrated_and_keeps_working(
    store_url: str, raw_engine: Engine
) -> None:
    _version_1_store(raw_engine)
    store = open_store(store_url)
    try:
        with raw_engine.connect() as conn:
            versions = conn.execute(select(schema_migrations.c.version)).scalars().all()
        assert sorted(versions) == list(range(1, LATEST_VERSION + 1))

        alice = store.get_account("alice", AccountKind.USER)
        assert alice is not None and alice.id and not alice.certificate_bound
        [old] = store.revocations_after(0)
        assert (old.jti, old.kind, old.target) == ("old-jti", RevocationKind.TOKEN, "")

        current = store.get_refresh_token("t1")
        assert current is not None
        assert (current.account_id, current.started_at) == (alice.id, NOW - 900)
        successor = RefreshToken(
            token_hash="t2",
            family_id="",
            subject="",
            client_id="",
            scopes=(),
            audience="",
            issued_at=NOW,
            expires_at=NOW + 3600,
            access_jti="",
            access_expires_at=NOW + 400,
        )
        assert store.rotate_refresh_token("t1", successor, NOW).status is RotationStatus.ROTATED

        # Reuse of the old family: one family revocation, and the old access tokens
        # (which name no family) one by one.
        reuse = store.rotate_refresh_token("t0", None, NOW + 1)
        assert reuse.status is RotationStatus.REUSED
        assert [(r.kind, r.target or r.jti) for r in reuse.revocations] == [
            (RevocationKind.FAMILY, "old-family"),
            (RevocationKind.TOKEN, "at-t0"),
            (RevocationKind.TOKEN, "at-t1"),
        ]
    finally:
        store.close()
