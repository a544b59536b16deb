"""Options shared by the commands; every flag also reads a ``BEARER_GRPC_*`` variable.

Precedence: flag, then environment variable, then the documented default. Secrets
(client secrets, passwords, tokens) never come from flags, where process listings and
shell histories would show them: they come from an environment variable, a prompt,
standard input, or a file only their owner may read (the key-encryption key, the
store's password).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bearer_grpc.core.errors import InvalidRequest

if TYPE_CHECKING:
    from bearer_grpc.core.keys import KeyEncryptionKey
    from bearer_grpc.service.process import ServeConfig
    from bearer_grpc.store import SqlStore

log = logging.getLogger("bearer_grpc.cli")

ENV_PREFIX = "BEARER_GRPC_"
DEFAULT_DATA_DIR = "bearer-grpc-data"


def env_name(flag: str) -> str:
    """``--data-dir`` → ``BEARER_GRPC_DATA_DIR``."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    *,
    help: str,
    **kwargs: Any,
) -> None:
    """Add ``flag`` whose default comes from its environment variable, then ``default``."""
    name = env_name(flag)
    shown = kwargs.pop("default", None)  # never the environment's value: it may be secret
    default = os.environ.get(name, shown)
    suffix = f" (env {name}" + (f"; default {shown}" if shown is not None else "") + ")"
    parser.add_argument(flag, default=default, help=help + suffix, **kwargs)


def add_server_options(parser: argparse.ArgumentParser, *, listen: str, grace: float) -> None:
    """How a long-running server (``serve``, ``authz``) listens, stops and logs.

    Its options: ``--listen``, TLS, ``--grace``, ``--metrics-listen``, ``--log-level``.
    """
    option(parser, "--listen", default=listen, help="address to bind, HOST:PORT")
    option(parser, "--tls-cert", type=Path, help="PEM certificate chain (enables TLS)")
    option(parser, "--tls-key", type=Path, help="PEM private key of --tls-cert")
    option(
        parser,
        "--tls-client-ca",
        type=Path,
        help="PEM CA bundle; clients must present a cert it signed (mTLS)",
    )
    option(
        parser, "--grace", type=float, default=grace, help="seconds in-flight calls get on SIGTERM"
    )
    option(
        parser,
        "--metrics-listen",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (:PORT for loopback); "
        "no authentication: keep it on loopback or a private network; off unless given",
    )
    option(
        parser,
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level",
    )


def server_config(args: argparse.Namespace) -> ServeConfig:
    """The :class:`ServeConfig` of :func:`add_server_options`' options, its TLS files checked.

    The files are checked so that bad options fail before anything starts.

    Raises:
        ValueError: An address or TLS option is wrong.
        OSError: A TLS file cannot be read.
    """
    from bearer_grpc.service.process import ServeConfig

    config = ServeConfig(
        listen=args.listen,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        grace=args.grace,
        metrics_listen=args.metrics_listen,
    )
    config.credentials()
    return config


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
        help="store URL instead of --data-dir: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(leave the password out: --store-password-file, PGPASSFILE or ~/.pgpass)",
    )
    option(
        parser,
        "--store-password-file",
        help="file holding the PostgreSQL password (mode 0600): kept out of the URL, "
        "process listings and shell histories",
        type=Path,
    )
    option(
        parser,
        "--key-encryption-key-file",
        help="file holding >= 32 bytes that encrypt private keys at rest (mode 0600)",
        type=Path,
    )


def open_configured_store(args: argparse.Namespace) -> SqlStore:
    """The store named by ``--store`` or ``--data-dir`` (needs the ``server`` extra).

    The PostgreSQL password comes from ``--store-password-file`` (or libpq's own
    ``PGPASSFILE`` and ``~/.pgpass``); a password written into a ``--store`` given on the
    command line is used, with a warning: process listings and shell histories show it.
    """
    from sqlalchemy.engine import make_url

    from bearer_grpc.store import is_postgres_url, open_store, sqlite_url

    if args.store is None:
        return open_store(sqlite_url(Path(args.data_dir)))
    url: str = args.store
    if not is_postgres_url(url):
        return open_store(url)
    parsed = make_url(url)
    if parsed.password is not None and url != os.environ.get(env_name("--store")):
        log.warning(
            "the --store URL on the command line holds a password, which process listings "
            "and shell histories show: use --store-password-file instead"
        )
    if args.store_password_file is not None:
        password = read_private_file(Path(args.store_password_file), "store password")
        url = parsed.set(password=password.decode().strip()).render_as_string(hide_password=False)
    return open_store(url)


def read_private_file(path: Path, what: str) -> bytes:
    """The contents of a file holding a secret, which only its owner may read.

    Raises:
        InvalidRequest: The file belongs to another user, or others may read or change it
            (the message says how to fix it; it never shows the contents).
        OSError: The file cannot be read.
    """
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.getuid():
        raise InvalidRequest(f"the {what} file {path} belongs to another user")
    if mode & 0o077:
        raise InvalidRequest(
            f"the {what} file {path} is open to others (mode {mode:04o}): chmod 600 it"
        )
    return path.read_bytes()


def key_encryption_key(args: argparse.Namespace) -> KeyEncryptionKey | None:
    """The key-encryption key from its file or environment variable, or None.

    The file is ``--key-encryption-key-file`` (a private file), the variable
    ``BEARER_GRPC_KEY_ENCRYPTION_KEY``.

    Raises:
        InvalidRequest: The file is open to others or belongs to another user.
    """
    from bearer_grpc.core.keys import KeyEncryptionKey

    if args.key_encryption_key_file is not None:
        path = Path(args.key_encryption_key_file)
        return KeyEncryptionKey(read_private_file(path, "key-encryption key"))
    value = os.environ.get(ENV_PREFIX + "KEY_ENCRYPTION_KEY")
    return KeyEncryptionKey(value.encode()) if value else None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


_MAX_DURATION = 10 * 365 * 86400
"""Longest duration read (ten years): every setting bounds its own far below."""


def duration(value: str) -> int:
    """``"90s"``, ``"15m"``, ``"12h"``, ``"30d"`` or plain seconds → seconds (argparse type).

    Raises:
        argparse.ArgumentTypeError: Not a whole number with an optional unit s, m, h or d,
            or longer than ten years.
    """
    text = value.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not (number.isascii() and number.isdigit()) or len(number) > 12:
        raise argparse.ArgumentTypeError(
            f"invalid duration {value!r}: use a whole number with s, m, h or d (e.g. 30d)"
        )
    seconds = int(number) * _UNITS[unit]
    if seconds > _MAX_DURATION:
        raise argparse.ArgumentTypeError(f"duration {value!r} is too long")
    return seconds


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
