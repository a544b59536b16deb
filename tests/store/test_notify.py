"""Change announcements: which writes wake a store's listeners, and how listeners recover.

The first part runs on every backend (a second store on the same database stands for a
second process; on SQLite only the same store's own writes are announced). The
PostgreSQL part reads the raw notifications with a LISTEN connection of the test's own,
and terminates the listener's session to prove it reconnects and asks for a catch-up.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bearer_grpc.core.backoff import Backoff
from bearer_grpc.store import TestableStore, open_store, sqlite_url
from bearer_grpc.store._postgres import CHANNEL, PostgresListener
from bearer_grpc.store._sqlite import LocalChanges
from tests.harness import LoopThread, pg_dsn, pg_schema_url, wait_until
from tests.store._records import NOW, key, refresh
from tests.store.conftest import OpenStore

LISTENER_APP = f"bearer-grpc-listener/{os.getpid()}"


class Wakes:
    """Counts a listener's calls; runs the listener on a loop in a thread of its own."""

    def __init__(self, store: TestableStore) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._loop = LoopThread()
        self._task: asyncio.Task[None] | None = None
        self._listener = store.change_listener()

    def _on_change(self) -> None:
        with self._lock:
            self.count += 1

    async def _start(self) -> None:
        self._task = asyncio.create_task(self._listener.listen(self._on_change))

    async def _stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    def start(self) -> None:
        self._loop.run(self._start())
        wait_until(lambda: self.count >= 1)  # the first call: "read what you missed"

    def stop(self) -> None:
        self._loop.run(self._stop())
        self._loop.close()

    def wait_for(self, count: int) -> None:
        wait_until(lambda: self.count >= count)


@contextmanager
def listening(store: TestableStore) -> Iterator[Wakes]:
    wakes = Wakes(store)
    wakes.start()
    try:
        yield wakes
    finally:
        wakes.stop()


def _writer(open_: OpenStore, store: TestableStore, store_url: str) -> TestableStore:
    """Another process's store on PostgreSQL; the same store on SQLite (in-process only)."""
    return open_() if store_url.startswith("postgresql") else store


def _family_revocation(store: TestableStore) -> None:
    store.add_refresh_token(refresh("h1", access_jti="a1"))
    store.revoke_refresh_family("h1", NOW)


WRITES: dict[str, Callable[[TestableStore], Any]] = {
    "revoke": lambda s: s.revoke("jti-1", NOW + 60, NOW),
    "add_key": lambda s: s.add_key(key("k-new", NOW + 60)),
    "add_key_if": lambda s: s.add_key_if(lambda stored: key("k-new", NOW + 60)),
    "family_revocation": _family_revocation,
    "replace_setting": lambda s: s.replace_setting("revocation_epoch", "e-2"),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_write_wakes_listener(
    store: TestableStore, open_: OpenStore, store_url: str, write: str
) -> None:
    with listening(store) as wakes:
        WRITES[write](_writer(open_, store, store_url))
        wakes.wait_for(2)


def test_writes_that_change_nothing_announce_nothing_on_sqlite(tmp_path: Path) -> None:
    """SQLite announces synchronously after the commit: the count is exact at once."""
    store = open_store(sqlite_url(tmp_path / "data"))
    try:
        store.revoke("jti-1", NOW + 60, NOW)
        store.add_refresh_token(refresh("h1"))
        store.revoke_refresh_family("h1", NOW)
        local = store.change_listener()
        assert isinstance(local, LocalChanges)
        announced: list[int] = []
        local.subscribe(lambda: announced.append(1))
        store.revoke("jti-1", NOW + 60, NOW)  # idempotent: nothing new
        store.add_key_if(lambda stored: None)
        store.revoke_refresh_family("h1", NOW)  # already revoked
        assert announced == []
        store.revoke("jti-2", NOW + 60, NOW)
        assert announced == [1]
    finally:
        store.close()


# -- PostgreSQL: the notifications themselves ----------------------------------------------------


@contextmanager
def raw_listener(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


def _payloads(conn: psycopg.Connection[Any], count: int) -> list[str]:
    got = [n.payload for n in conn.notifies(timeout=5, stop_after=count)]
    assert len(got) == count, got
    return got


@pytest.mark.postgres
def test_payload_names_kind_sequence_and_schema_only(pg_url: str) -> None:
    store = open_store(pg_url)
    schema = pg_url.rsplit("%3D", 1)[1]
    try:
        with raw_listener(pg_dsn()) as conn:
            store.revoke("jti-secretive", NOW + 60, NOW)
            store.revoke("jti-secretive", NOW + 60, NOW)  # idempotent: no second one
            store.add_key(key("k1"))
            payloads = _payloads(conn, 2)
    finally:
        store.close()
    assert payloads == [f"revocation 1 {schema}", f"key 0 {schema}"]


@pytest.mark.postgres
def test_rolled_back_write_announces_nothing(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        store.add_key(key("k1"))
        with raw_listener(pg_dsn()) as conn:
            with pytest.raises(RuntimeError):
                store.add_key_if(lambda stored: (_ for _ in ()).throw(RuntimeError("no")))
            with pytest.raises(Exception, match="already exists"):
                store.add_key(key("k1"))  # the insert fails: the transaction rolls back
            store.revoke("jti-2", NOW + 60, NOW)
            assert _payloads(conn, 1)[0].startswith("revocation ")
    finally:
        store.close()


@pytest.mark.postgres
def test_listener_ignores_other_schemas(pg_url: str) -> None:
    mine = open_store(pg_url)
    with pg_schema_url(pg_dsn()) as other_url:
        other = open_store(other_url)
        try:
            with listening(mine) as wakes:
                other.revoke("jti-elsewhere", NOW + 60, NOW)
                mine.revoke("jti-here", NOW + 60, NOW)
                wakes.wait_for(2)  # delivered in commit order: the other one came first
                assert wakes.count == 2
        finally:
            other.close()
            mine.close()


def _listener_pids() -> list[int]:
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (LISTENER_APP,)
        ).fetchall()
    return [int(row[0]) for row in rows]


def _terminate(pids: list[int]) -> None:
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_listener_reconnects_and_asks_for_a_catch_up(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        with listening(store) as wakes:
            first = wait_until(_listener_pids)
            _terminate(first)
            wakes.wait_for(2)  # reconnected: "read what you missed"
            second = wait_until(_listener_pids)
            assert second != first
            store.revoke("jti-after", NOW + 60, NOW)  # and it listens again
            wakes.wait_for(3)
        assert _listener_pids() == []  # cancelled: its session is closed
    finally:
        store.close()


def test_listener_keeps_trying_while_the_server_is_unreachable() -> None:
    """A listener that cannot connect never raises; it backs off until cancelled."""
    listener = PostgresListener(
        {"host": "127.0.0.1", "port": 1, "dbname": "none", "connect_timeout": 1},
        backoff=Backoff(initial=0.01, maximum=0.02),
    )
    calls: list[int] = []

    async def attempt() -> None:
        task = asyncio.create_task(listener.listen(lambda: calls.append(1)))
        done, _ = await asyncio.wait({task}, timeout=0.3)  # many attempts by now
        assert not done  # still retrying, not crashed
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(attempt())
    assert calls == []
    assert not listener.connected
