"""``serve``: run the TokenService.

It needs the ``server`` extra, imported only when ``serve`` is parsed or run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Final

from bearer_grpc.cli._options import (
    add_store_options,
    duration,
    is_postgres_url,
    key_encryption_key,
    open_configured_store,
    option,
)
from bearer_grpc.core.keys import ALGORITHMS
from bearer_grpc.service.settings import ServiceSettings

log = logging.getLogger("bearer_grpc.server")

COMMANDS: Final = {"serve": "run the TokenService"}
"""The command this module adds, with its one-line help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command with its options (their defaults are the service's own)."""
    from bearer_grpc.service.server import ServeConfig

    settings, config = ServiceSettings(), ServeConfig()  # the defaults, stated once
    parser = commands.add_parser("serve", help=COMMANDS["serve"])
    option(parser, "--listen", default=config.listen, help="address to bind, HOST:PORT")
    add_store_options(parser)
    option(parser, "--tls-cert", type=Path, help="PEM certificate chain (enables TLS)")
    option(parser, "--tls-key", type=Path, help="PEM private key of --tls-cert")
    option(
        parser,
        "--tls-client-ca",
        type=Path,
        help="PEM CA bundle; clients must present a cert it signed (mTLS)",
    )
    option(
        parser,
        "--http-listen",
        help="also serve OAuth 2.0 over HTTP (discovery, JWKS, token, revocation, "
        "introspection) at HOST:PORT, HTTPS with --tls-cert; needs an https:// --issuer "
        "(http:// on loopback); off unless given",
    )
    option(
        parser,
        "--issuer",
        default=settings.issuer,
        help="iss of issued tokens; with --http-listen, the URL the HTTP face is reached at",
    )
    option(
        parser,
        "--access-ttl",
        type=int,
        default=settings.access_ttl,
        help="access token lifetime, seconds",
    )
    option(
        parser,
        "--refresh-ttl",
        type=int,
        default=settings.refresh_ttl,
        help="refresh token lifetime, seconds",
    )
    option(
        parser, "--leeway", type=int, default=settings.leeway, help="clock skew tolerated, seconds"
    )
    option(
        parser,
        "--key-algorithm",
        choices=ALGORITHMS,
        default=settings.key_algorithm,
        help="algorithm of generated keys",
    )
    option(
        parser,
        "--grace",
        type=float,
        default=config.grace,
        help="seconds in-flight calls get on SIGTERM",
    )
    option(
        parser,
        "--sync-interval",
        type=float,
        default=settings.sync_interval,
        help="seconds between store reads for other writers' keys and revocations",
    )
    option(
        parser,
        "--rotate-keys-every",
        type=duration,
        help="stage a new signing key whenever the newest is this old (30d, 12h, 90s...); "
        "every replica checks, one of them stages it; off unless given",
    )
    option(
        parser,
        "--key-publish-delay",
        type=duration,
        default=settings.key_publish_delay,
        help="how long a scheduled key is published before it signs (30m, 1800...): longer "
        "than any verifier caches keys (Envoy 10 min, Istio 20 min by default)",
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
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from bearer_grpc.service import log_format
    from bearer_grpc.service.authority import TokenAuthority
    from bearer_grpc.service.server import ServeConfig, serve

    log_format.configure(args.log_level)
    settings = ServiceSettings(
        issuer=args.issuer,
        access_ttl=args.access_ttl,
        refresh_ttl=args.refresh_ttl,
        leeway=args.leeway,
        key_algorithm=args.key_algorithm,
        sync_interval=args.sync_interval,
        rotate_keys_every=args.rotate_keys_every or 0,
        key_publish_delay=int(args.key_publish_delay),
    )
    config = ServeConfig(
        listen=args.listen,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        grace=args.grace,
        metrics_listen=args.metrics_listen,
        http_listen=args.http_listen,
    )
    config.credentials()  # fail on bad TLS options before touching the store
    if config.http_listen is not None:
        from bearer_grpc.service.http.discovery import check_issuer

        check_issuer(settings.issuer)
    kek = key_encryption_key(args)
    store = open_configured_store(args)
    if kek is None and is_postgres_url(args.store):
        log.warning(
            "private signing keys are stored unencrypted in PostgreSQL: "
            "give --key-encryption-key-file (or BEARER_GRPC_KEY_ENCRYPTION_KEY)"
        )
    try:
        authority = TokenAuthority(store, settings, kek=kek)
        asyncio.run(serve(authority, config))
    finally:
        store.close()
    return 0
