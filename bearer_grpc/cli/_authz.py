"""``authz``: run Envoy's external authorization server.

Where tokens are checked is chosen by one of three options (every flag also reads its
``BEARER_GRPC_*`` variable):

- ``--token-service HOST:PORT`` (the default, ``127.0.0.1:50051``): keys from
  ``GetJwks`` and revocations pushed by ``WatchRevocations``; ``--remote`` asks
  ``VerifyToken`` about each new token instead.
- ``--issuer URL``: any OpenID Connect or OAuth issuer, keys found by discovery; with
  ``--jwks-url`` (keys at that URL) or ``--jwks-file`` (a fixed key set) the issuer is
  only the exact ``iss`` expected. ``--profile`` names what its tokens look like.
- ``--introspection-url URL`` with ``--client-id`` (secret in
  ``BEARER_GRPC_CLIENT_SECRET`` or on standard input): opaque tokens, RFC 7662.

It needs the ``authz`` extra, imported only when ``authz`` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bearer_grpc.cli._options import add_server_options, option, read_secret, server_config

if TYPE_CHECKING:
    from bearer_grpc._verifier.verifier_aio import Verifier

COMMANDS: Final = {"authz": "run Envoy's external authorization server (ext_authz)"}
"""The command this module adds, with its one-line help."""

DEFAULT_LISTEN: Final = "127.0.0.1:9191"
DEFAULT_GRACE: Final = 5.0
DEFAULT_TOKEN_SERVICE: Final = "127.0.0.1:50051"  # noqa: S105 (an address)
PROFILES: Final = ("rfc9068", "keycloak", "okta", "entra", "auth0")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``authz`` command with its options."""
    parser = commands.add_parser("authz", help=COMMANDS["authz"])
    add_server_options(parser, listen=DEFAULT_LISTEN, grace=DEFAULT_GRACE)
    option(
        parser,
        "--policy",
        type=Path,
        help="policy file (TOML); default: a valid token "
        "for every method, health checking and reflection public",
    )
    option(parser, "--audience", help="the audience tokens must name (required)")
    source = parser.add_argument_group("where tokens are checked (one of)")
    option(
        source, "--token-service", help=f"TokenService HOST:PORT (default {DEFAULT_TOKEN_SERVICE})"
    )
    source.add_argument(
        "--remote",
        action="store_true",
        help="with --token-service: call "
        "VerifyToken for each new token instead of verifying locally",
    )
    option(
        source, "--token-service-ca", type=Path, help="CA bundle to reach the TokenService over TLS"
    )
    option(
        source,
        "--issuer",
        help="issuer URL (discovery), or the exact iss with --jwks-url/--jwks-file",
    )
    option(source, "--jwks-url", help="the issuer's JWKS URL (no discovery)")
    option(source, "--jwks-file", type=Path, help="a fixed JWKS file")
    option(
        source, "--profile", choices=PROFILES, default="rfc9068", help="token profile of --issuer"
    )
    option(source, "--ca-file", type=Path, help="CA bundle for the issuer's HTTPS")
    option(
        source,
        "--introspection-url",
        help="RFC 7662 endpoint (secret: BEARER_GRPC_CLIENT_SECRET or stdin)",
    )
    option(source, "--client-id", help="client id for --introspection-url")
    parser.set_defaults(run=_authz)


def _authz(args: argparse.Namespace) -> int:
    import asyncio

    from bearer_grpc.authz.server import serve_authz
    from bearer_grpc.core.policy import Policy
    from bearer_grpc.service import log_format

    log_format.configure(args.log_level)
    config = server_config(args)
    policy = Policy.from_file(args.policy) if args.policy is not None else Policy()
    asyncio.run(serve_authz(verifier(args), policy, config))
    return 0


def verifier(args: argparse.Namespace) -> Verifier:
    """The verifier the options describe.

    Raises:
        ValueError: No audience, or options of two sources at once.
    """
    import grpc

    from bearer_grpc._verifier.verifier_aio import Verifier
    from bearer_grpc.core.profiles import TokenProfile

    if not args.audience:
        raise ValueError("--audience is required (or BEARER_GRPC_AUDIENCE)")
    given = [
        name
        for name, value in (
            ("--token-service", args.token_service),
            ("--issuer", args.issuer),
            ("--introspection-url", args.introspection_url),
        )
        if value
    ]
    if len(given) > 1:
        raise ValueError(f"give one of --token-service, --issuer, --introspection-url: {given}")
    if (args.jwks_url or args.jwks_file) and not args.issuer:
        raise ValueError("--jwks-url and --jwks-file need --issuer (the exact iss)")
    if args.jwks_url and args.jwks_file:
        raise ValueError("give --jwks-url or --jwks-file, not both")
    audience, ca_file = args.audience, str(args.ca_file) if args.ca_file else None
    if args.introspection_url:
        if not args.client_id:
            raise ValueError("--introspection-url needs --client-id")
        secret = read_secret("CLIENT_SECRET", "client secret: ")
        return Verifier.introspection(
            args.introspection_url,
            client_id=args.client_id,
            client_secret=secret,
            audience=audience,
            ca_file=ca_file,
        )
    if args.issuer:
        profile = getattr(TokenProfile, args.profile)()
        if args.jwks_file:
            jwks = Path(args.jwks_file).read_text()
            return Verifier.from_jwks(jwks, issuer=args.issuer, audience=audience, profile=profile)
        if args.jwks_url:
            return Verifier.from_jwks_url(
                args.jwks_url,
                issuer=args.issuer,
                audience=audience,
                profile=profile,
                ca_file=ca_file,
            )
        return Verifier.from_issuer(
            args.issuer, audience=audience, profile=profile, ca_file=ca_file
        )
    target = args.token_service or DEFAULT_TOKEN_SERVICE
    credentials = (
        grpc.ssl_channel_credentials(Path(args.token_service_ca).read_bytes())
        if args.token_service_ca
        else None
    )
    if args.remote:
        return Verifier.remote(target, audience=audience, credentials=credentials)
    return Verifier.from_token_service(target, audience=audience, credentials=credentials)
