"""How the commands that talk to a server reach it: TLS unless the server is on this host.

``token`` commands send client secrets and tokens, admin commands admin tokens and new
credentials; both open their channel here, with the same options and the same rule.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bearer_grpc.cli._options import option
from bearer_grpc.core.hosts import is_loopback

if TYPE_CHECKING:
    import grpc


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-ca``, ``--tls-client-cert``, ``--tls-client-key`` and ``--plaintext``."""
    option(
        parser,
        "--tls-ca",
        type=Path,
        help="CA bundle to verify the server (default: the system's roots)",
    )
    option(parser, "--tls-client-cert", type=Path, help="client certificate for mTLS")
    option(parser, "--tls-client-key", type=Path, help="client key for mTLS")
    parser.add_argument(
        "--plaintext",
        action="store_true",
        help="no TLS to a target that is not on this host (tokens and secrets then cross the "
        "network in the clear)",
    )


def uses_tls(args: argparse.Namespace) -> bool:
    """Whether the channel to ``--target`` must be TLS.

    Tokens, client secrets and new credentials cross this channel, so only a loopback or
    Unix-socket target gets plaintext by default; any other needs TLS (with
    ``--tls-ca``, or the system's roots) unless ``--plaintext`` insists. TLS options always
    mean TLS.

    Raises:
        ValueError: ``--plaintext`` together with TLS options.
    """
    tls_options = any((args.tls_ca, args.tls_client_cert, args.tls_client_key))
    if args.plaintext and tls_options:
        raise ValueError("--plaintext contradicts the --tls-* options")
    if tls_options:
        return True
    return not (args.plaintext or is_local(args.target))


def is_local(target: str) -> bool:
    """Whether a gRPC target names this host: loopback addresses, ``localhost``, Unix sockets."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    address = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return is_loopback(host.strip("[]"))


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A channel to ``--target``: TLS unless the target is local or ``--plaintext`` says so.

    The client options add mTLS. See :func:`uses_tls`.
    """
    import grpc

    if not uses_tls(args):
        if not is_local(args.target):
            print(
                f"bearer-grpc: warning: plaintext to {args.target}: tokens and secrets cross "
                "the network in the clear",
                file=sys.stderr,
            )
        return grpc.insecure_channel(args.target)
    key = Path(args.tls_client_key).read_bytes() if args.tls_client_key else None
    cert = Path(args.tls_client_cert).read_bytes() if args.tls_client_cert else None
    roots = Path(args.tls_ca).read_bytes() if args.tls_ca else None
    credentials = grpc.ssl_channel_credentials(roots, key, cert)
    return grpc.secure_channel(args.target, credentials)
