"""The ``bearer-grpc`` command line: ``serve``, ``clients``, ``users``, ``keys``, ``token``.

Errors a user can cause (bad arguments, unknown names, a server that refuses, an
unreachable store) print one line on stderr and exit non-zero; no traceback.
"""

from __future__ import annotations

import os

# gRPC's C core logs handshake and bind failures at INFO on stderr, next to our one-line
# error. It reads the level once, when grpc is imported: so before any import of grpc.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

import grpc

from bearer_grpc.cli import _admin, _serve, _token
from bearer_grpc.core.errors import BearerGrpcError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="bearer-grpc",
        description="Bearer token authentication for gRPC microservices.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve.register(commands)
    _admin.register(commands)
    _token.register(commands)
    return parser


def _version() -> str:
    try:
        return metadata.version("bearer-grpc")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except grpc.RpcError as err:
        code = err.code().name if isinstance(err, grpc.Call) else "UNKNOWN"
        details = err.details() if isinstance(err, grpc.Call) else ""
        return _fail(f"{code}: {details}")
    except (BearerGrpcError, ValueError) as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{err.strerror or err}: {err.filename}" if err.filename else str(err))


def _fail(message: str) -> int:
    print(f"bearer-grpc: error: {message}", file=sys.stderr)
    return EXIT_ERROR
