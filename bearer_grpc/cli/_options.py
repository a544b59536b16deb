"""Options shared by the commands; every flag also reads a ``BEARER_GRPC_*`` variable.

Precedence: flag, then environment variable, then the documented default. Secrets
(client secrets, passwords, tokens) never come from flags, where process listings and
shell histories would show them: they come from an environment variable, a prompt, or
standard input.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bearer_grpc.core.errors import InvalidRequest
from bearer_grpc.core.keys import KeyEncryptionKey

if TYPE_CHECKING:
    from bearer_grpc.store import SqlStore

ENV_PREFIX = "BEARER_GRPC_"
DEFAULT_DATA_DIR = "bearer-grpc-data"


def env_name(flag: str) -> str:
    """``--data-dir`` → ``BEARER_GRPC_DATA_DIR``."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def option(parser: argparse.ArgumentParser, flag: str, *, help: str, **kwargs: Any) -> None:
    """Add ``flag`` whose default comes from its environment variable, then ``default``."""
    name = env_name(flag)
    shown = kwargs.pop("default", None)  # never the environment's value: it may be secret
    default = os.environ.get(name, shown)
    suffix = f" (env {name}" + (f"; default {shown}" if shown is not None else "") + ")"
    parser.add_argument(flag, default=default, help=help + suffix, **kwargs)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--store`` and the key-encryption key options."""
    option(
        parser,
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help="directory of the embedded SQLite store",
        type=Path,
    )
    option(
        parser,
        "--store",
        help="store URL instead of --data-dir: sqlite:///PATH or postgresql://...",
    )
    option(
        parser,
        "--key-encryption-key-file",
        help="file holding >= 32 bytes that encrypt private keys at rest",
        type=Path,
    )


def open_configured_store(args: argparse.Namespace) -> SqlStore:
    """The store named by ``--store`` or ``--data-dir`` (needs the ``server`` extra)."""
    from bearer_grpc.store import open_store, sqlite_url

    url = args.store or sqlite_url(Path(args.data_dir))
    return open_store(url)


def key_encryption_key(args: argparse.Namespace) -> KeyEncryptionKey | None:
    """The key-encryption key from ``--key-encryption-key-file`` or
    ``BEARER_GRPC_KEY_ENCRYPTION_KEY``, or None."""
    if args.key_encryption_key_file is not None:
        return KeyEncryptionKey(Path(args.key_encryption_key_file).read_bytes())
    value = os.environ.get(ENV_PREFIX + "KEY_ENCRYPTION_KEY")
    return KeyEncryptionKey(value.encode()) if value else None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: str) -> int:
    """``"90s"``, ``"15m"``, ``"12h"``, ``"30d"`` or plain seconds → seconds (argparse type).

    Raises:
        argparse.ArgumentTypeError: Not a whole number with an optional unit s, m, h or d.
    """
    text = value.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not (number.isascii() and number.isdigit()):
        raise argparse.ArgumentTypeError(
            f"invalid duration {value!r}: use a whole number with s, m, h or d (e.g. 30d)"
        )
    return int(number) * _UNITS[unit]


def is_postgres_url(url: str | None) -> bool:
    """Whether a ``--store`` URL names PostgreSQL, as the store reads it (None: no ``--store``)."""
    from bearer_grpc.store import is_postgres_url as names_postgres

    return url is not None and names_postgres(url)


def csv(value: str) -> list[str]:
    """``"a,b, c"`` → ``["a", "b", "c"]`` (argparse type)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def read_secret(variable: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from ``BEARER_GRPC_<variable>``, a terminal prompt, or one stdin line.

    Raises:
        InvalidRequest: Nothing was given, or the confirmation differs.
    """
    value = os.environ.get(ENV_PREFIX + variable)
    if value is None and sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(prompt)
        if confirm and getpass.getpass("again: ") != value:
            raise InvalidRequest("the two entries differ")
    elif value is None and sys.stdin is not None:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise InvalidRequest(f"no {prompt.rstrip(': ')} given (stdin or {ENV_PREFIX}{variable})")
    return value
