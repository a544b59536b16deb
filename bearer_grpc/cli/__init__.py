"""The ``bearer-grpc`` command line and its commands.

The commands: ``serve``, ``clients``, ``users``, ``keys``, ``store``, ``token``, ``authz``.

Errors a user can cause (bad arguments, unknown names, a server that refuses, an
unreachable store) print one line on stderr and exit non-zero; no traceback.

A command imports only what it needs, when it runs: building the parser, ``--help`` and
``--version`` load no gRPC, protobuf, cryptography, JWT or database module, and ``token``
(which talks to a running TokenService with the base install) loads no database module.
``serve``, ``clients``, ``users`` and ``keys`` need the ``server`` extra (the store,
metrics, health checking and reflection), ``authz`` the ``authz`` extra (Envoy's API,
metrics, health checking); without it each says so in one line.
"""

from __future__ import annotations

import os

# gRPC's C core logs handshake and bind failures at INFO on stderr, next to our one-line
# error. It reads the level once, when grpc is imported: so before any import of grpc.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from bearer_grpc import __version__
from bearer_grpc.cli import _admin, _authz, _serve, _store, _token
from bearer_grpc.core.errors import BearerGrpcError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

SERVER_EXTRA_MODULES: Final = frozenset(
    {"sqlalchemy", "prometheus_client", "grpc_health", "grpc_reflection", "aiohttp", "zxcvbn"}
)
"""Top-level modules of the ``server`` extra's distributions."""
SERVER_EXTRA_HINT: Final = "pip install 'bearer-grpc[server]'"
AUTHZ_EXTRA_MODULES: Final = frozenset(
    {"envoy", "xds", "udpa", "validate", "prometheus_client", "grpc_health"}
)
"""Top-level modules of the ``authz`` extra's distributions."""
AUTHZ_EXTRA_HINT: Final = "pip install 'bearer-grpc[authz]'"

_MODULES: Final = (_serve, _admin, _store, _token, _authz)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser, with the options of ``command`` only.

    Every command is listed with its one-line help, but only the module of ``command``
    adds its options, and imports what they need (None: no command's options).

    Raises:
        ModuleNotFoundError: ``command`` needs an extra that is not installed.
    """
    parser = argparse.ArgumentParser(
        prog="bearer-grpc",
        description="Bearer token authentication for gRPC microservices.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _MODULES:
        if command in module.COMMANDS:
            module.register(commands)
        else:
            for name, summary in module.COMMANDS.items():
                commands.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
        status: int = args.run(args)
        return status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as err:
        missing = (err.name or "").partition(".")[0]
        if command == "authz" and missing in AUTHZ_EXTRA_MODULES:
            return _fail(f"authz needs Envoy's API and its server parts: {AUTHZ_EXTRA_HINT}")
        if missing not in SERVER_EXTRA_MODULES:
            raise
        return _fail(f"{command} needs the TokenService's dependencies: {SERVER_EXTRA_HINT}")
    except (BearerGrpcError, ValueError) as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{err.strerror or err}: {err.filename}" if err.filename else str(err))
    except Exception as err:
        refusal = _rpc_error(err)
        if refusal is None:
            raise
        return _fail(refusal)


def _rpc_error(err: Exception) -> str | None:
    """``CODE: details`` of a gRPC error, None for any other error.

    gRPC is looked up, not imported: if no command loaded it, ``err`` cannot be its error.
    """
    grpc = sys.modules.get("grpc")
    if grpc is None or not isinstance(err, grpc.RpcError):
        return None
    if isinstance(err, grpc.Call):
        return f"{err.code().name}: {err.details()}"
    return "UNKNOWN: "


def _fail(message: str) -> int:
    print(f"bearer-grpc: error: {message}", file=sys.stderr)
    return EXIT_ERROR
