"""``scripts/bench``: measure bearer_grpc on this machine, print a table, write JSON and PNG.

Sections (``--only`` picks some; each interleaves its comparisons in ABBA rounds and
quotes medians, ratios taken per round then medianed):

  micro       verifying one token per algorithm: raw crypto, PyJWT, bearer_grpc miss/hit
  echo        unary echo, sync and aio servers: bare, naive PyJWT, bearer_grpc
  service     VerifyToken next to a bare echo; IssueToken on SQLite (and PostgreSQL)
  grants      client credentials in process: issue in a worker thread / issue_async
  revocation  RevokeToken ack -> a verifier refuses the token (and across replicas on PG)
  memory      bytes per cached token; the cache bound holds
  issuers     another identity provider's token: cache hit, miss / PyJWT, and from
              Verifier.from_issuer(...) to its first verified call (local JWKS server)
  http        the OAuth HTTP face: /token, JWKS next to gRPC, oidc-provider, bare aiohttp
  cli         the bearer-grpc command as a whole process: --version, --help and token
              verify (on a running serve) next to python -c pass; min and median of 10
  mesh        (only with --only mesh) one Envoy: bare, jwt_authn, ext_authz -> bearer-grpc
              authz; Check next to a bare echo on one server; one check in process

Everything runs on loopback. PostgreSQL parts run with --pg-dsn (default: the
BEARER_GRPC_TEST_PG_DSN environment variable), each on a fresh schema dropped afterwards.

    scripts/bench                         # a few minutes; writes docs/bench.json, docs/bench.png
    scripts/bench --quick --json /tmp/b.json --png /tmp/b.png    # seconds (smoke test)
    scripts/bench --only micro,memory
    scripts/bench --only cli              # seconds: the command line's start-up
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cryptography
import grpc
import jwt

from benchkit import (
    chart,
    cli_startup,
    echo,
    grants,
    http_face,
    issuers,
    memory,
    mesh,
    micro,
    report,
    revocation,
    service,
)

SECTIONS = ("micro", "echo", "service", "grants", "revocation", "memory", "issuers", "http", "cli")
ON_REQUEST = ("mesh",)
"""Sections run only when ``--only`` names them: mesh needs Envoy and takes 2 minutes."""
PG_ENV = "BEARER_GRPC_TEST_PG_DSN"
DOCS = Path("docs")

FULL: dict[str, Any] = {
    "micro_rounds": 5,
    "micro_seconds": 0.3,
    "rounds": 6,
    "seconds": 2.0,
    "warmup": 0.5,
    "concurrency": 64,
    "fresh_every": 100,
    "revocations": 100,
    "memory_sizes": [10_000, 100_000],
    "bound_max": 1_000,
    "first_calls": 5,
    "cli_runs": 10,
}
QUICK: dict[str, Any] = {
    "micro_rounds": 1,
    "micro_seconds": 0.02,
    "rounds": 1,
    "seconds": 0.3,
    "warmup": 0.1,
    "concurrency": 64,
    "fresh_every": 100,
    "revocations": 5,
    "memory_sizes": [100, 1_000],
    "bound_max": 20,
    "first_calls": 1,
    "cli_runs": 3,
}


def _sections(text: str) -> tuple[str, ...]:
    chosen = {item.strip() for item in text.split(",") if item.strip()}
    unknown = chosen - set(SECTIONS + ON_REQUEST)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SECTIONS + ON_REQUEST)}")
    return tuple(name for name in SECTIONS + ON_REQUEST if name in chosen)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes (CI smoke)")
    parser.add_argument("--only", type=_sections, default=SECTIONS, metavar="SECTION[,SECTION]")
    parser.add_argument("--json", type=Path, metavar="PATH", help="default docs/bench.json")
    parser.add_argument("--png", type=Path, metavar="PATH", help="default docs/bench.png")
    parser.add_argument(
        "--pg-dsn", default=os.environ.get(PG_ENV) or None, help=f"PostgreSQL (default ${PG_ENV})"
    )
    parser.add_argument("--rounds", type=int, help="rounds of echo and service (6)")
    parser.add_argument("--seconds", type=float, help="window of echo and service (2 s)")
    parser.add_argument("--concurrency", type=int, help="calls in flight (64)")
    parser.add_argument("--revocations", type=int, help="revocations timed (100)")
    args = parser.parse_args(argv)
    for name in ("rounds", "seconds", "concurrency", "revocations"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive")
    full_default = not args.quick and args.only == SECTIONS
    if args.json is None and full_default:
        args.json = DOCS / "bench.json"
    if args.png is None and full_default:
        args.png = DOCS / "bench.png"
    return args


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The counts and windows of this run."""
    settings = dict(QUICK if args.quick else FULL)
    for name in ("rounds", "seconds", "concurrency", "revocations"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    settings.update(quick=args.quick, sections=list(args.only), postgresql=bool(args.pg_dsn))
    return settings


def environment() -> dict[str, Any]:
    """Versions and machine, for the record."""
    try:
        from cryptography.hazmat.backends.openssl import backend

        openssl = backend.openssl_version_text()
    except Exception:  # informational only
        openssl = "unknown"
    return {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "pyjwt": jwt.__version__,
        "cryptography": cryptography.__version__,
        "openssl": openssl,
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen sections in order; return the whole document."""
    settings = settings_of(args)
    progress = not args.quick
    document: dict[str, Any] = {"settings": settings, "environment": environment()}
    runners: dict[str, Callable[[], Any]] = {
        "micro": lambda: micro.run(settings),
        "echo": lambda: asyncio.run(echo.run(settings, progress)),
        "service": lambda: asyncio.run(service.run(settings, args.pg_dsn, progress)),
        "grants": lambda: grants.run(settings),
        "revocation": lambda: revocation.run(settings, args.pg_dsn, progress),
        "memory": lambda: memory.run(settings, progress),
        "issuers": lambda: issuers.run(settings),
        "http": lambda: asyncio.run(http_face.run(settings, progress)),
        "cli": lambda: cli_startup.run(settings),
        "mesh": lambda: mesh.run(settings, progress),
    }
    timings = {}
    for name in args.only:
        if progress:
            print(f"{name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        document[name] = runners[name]()
        timings[name] = round(time.monotonic() - started, 1)
    document["seconds_taken"] = timings
    return document


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``scripts/bench``."""
    args = parse_args(argv)
    started = time.monotonic()
    document = run(args)
    table = report.rows(document)
    document["table"] = [row.as_dict() for row in table]
    env = document["environment"]
    print(
        f"bearer_grpc bench ({'quick' if args.quick else 'full'}), Python {env['python']}, "
        f"grpcio {env['grpcio']}, PyJWT {env['pyjwt']}, cryptography {env['cryptography']} "
        f"({env['openssl']}), {env['nproc']} CPUs, load {env['loadavg_at_start'][0]:.2f}; "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print(report.markdown(table))
    print(
        "\nMedians over interleaved rounds; ratios per round, then medianed. "
        "Targets are marked, not enforced."
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    if args.png is not None:
        chart.write(document, args.png)


if __name__ == "__main__":
    main()
