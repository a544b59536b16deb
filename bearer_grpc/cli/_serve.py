"""``serve``: run the TokenService.

It needs the ``server`` extra, imported only when ``serve`` is parsed or run.
"""

from __future__ import annotations

import argparse
import logging
from typing import Final

from bearer_grpc.cli._options import (
    add_server_options,
    add_store_options,
    duration,
    is_postgres_url,
    key_encryption_key,
    open_configured_store,
    option,
    server_config,
)

log = logging.getLogger("bearer_grpc.server")

COMMANDS: Final = {"serve": "run the TokenService"}
"""The command this module adds, with its one-line help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command with its options (their defaults are the service's own)."""
    from bearer_grpc.core.keys import ALGORITHMS
    from bearer_grpc.service.process import ServeConfig
    from bearer_grpc.service.settings import ServiceSettings

    settings, config = ServiceSettings(), ServeConfig()  # the defaults, stated once
    parser = commands.add_parser("serve", help=COMMANDS["serve"])
    add_server_options(parser, listen=config.listen, grace=config.grace)
    add_store_options(parser)
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
        parser,
        "--session-ttl",
        type=duration,
        default=settings.session_ttl,
        help="absolute session lifetime (90d, 12h...): a login's refresh tokens are refused "
        "this long after it, however they were used",
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
        "--watch-streams",
        type=int,
        default=settings.watch_streams,
        help="WatchRevocations streams open at once, over all callers",
    )
    option(
        parser,
        "--watch-streams-per-peer",
        type=int,
        default=settings.watch_streams_per_peer,
        help="WatchRevocations streams one network address may hold",
    )
    option(
        parser,
        "--audit-retention",
        type=duration,
        default=settings.audit_retention,
        help="how long audit events are kept (365d, 90d...); 0 keeps them for ever",
    )
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from bearer_grpc.service import log_format
    from bearer_grpc.service.authority import TokenAuthority
    from bearer_grpc.service.server import serve
    from bearer_grpc.service.settings import ServiceSettings

    log_format.configure(args.log_level)
    settings = ServiceSettings(
        issuer=args.issuer,
        access_ttl=args.access_ttl,
        refresh_ttl=args.refresh_ttl,
        session_ttl=args.session_ttl,
        leeway=args.leeway,
        key_algorithm=args.key_algorithm,
        sync_interval=args.sync_interval,
        rotate_keys_every=args.rotate_keys_every or 0,
        key_publish_delay=int(args.key_publish_delay),
        watch_streams=args.watch_streams,
        watch_streams_per_peer=args.watch_streams_per_peer,
        audit_retention=int(args.audit_retention),
    )
    # bad TLS options fail here, before the store is touched
    config = dataclasses.replace(server_config(args), http_listen=args.http_listen)
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
