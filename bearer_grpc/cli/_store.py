"""``store backup|new-epoch``: back up the store, and follow up a restore.

- ``store backup FILE`` copies the SQLite store online, while ``serve`` runs: one
  consistent snapshot through SQLite's backup API, written beside FILE with mode 0600
  and renamed over it only once complete. PostgreSQL stores are backed up with
  ``pg_dump`` (or point-in-time recovery): the command says so and exits non-zero.
- ``store new-epoch`` gives the store's revocation log a new epoch. Run it after
  restoring any backup (SQLite or PostgreSQL): verifiers then follow the revocations
  again from the start instead of resuming at a position that the restored log numbers
  differently.

They need the ``server`` extra (the store), imported only when one of them runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from bearer_grpc.cli._options import add_store_options, open_configured_store
from bearer_grpc.cli._output import emit

COMMANDS: Final = {"store": "back up the store; start a new revocation epoch after a restore"}
"""The command this module adds, with its one-line help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``store`` command with its actions and options."""
    store = commands.add_parser("store", help=COMMANDS["store"])
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    backup = actions.add_parser(
        "backup",
        help="copy the SQLite store to FILE while serve runs (PostgreSQL: use pg_dump)",
    )
    backup.add_argument("file", type=Path, help="the backup file (replaced when complete)")
    backup.set_defaults(run=_backup)
    epoch = actions.add_parser(
        "new-epoch",
        help="after restoring a backup: make every verifier follow revocations from the start",
    )
    epoch.set_defaults(run=_new_epoch)
    for sub in (backup, epoch):
        add_store_options(sub)
        sub.add_argument("--json", action="store_true", help="machine-readable output")


def _backup(args: argparse.Namespace) -> int:
    from bearer_grpc.store import DATABASE_FILENAME, backup_sqlite, sqlite_path

    if args.store is None:
        database = Path(args.data_dir) / DATABASE_FILENAME
    else:
        database = sqlite_path(args.store)
    target: Path = args.file
    size = backup_sqlite(database, target)
    emit(
        args.json,
        {"backup": str(target), "bytes": size},
        f"backed up {database} to {target} ({size} bytes)",
    )
    return 0


def _new_epoch(args: argparse.Namespace) -> int:
    from bearer_grpc.service.revocations import new_epoch

    store = open_configured_store(args)
    try:
        epoch = new_epoch(store)
    finally:
        store.close()
    emit(
        args.json,
        {"epoch": epoch},
        f"new revocation epoch {epoch}: verifiers follow revocations again from the start",
    )
    return 0
