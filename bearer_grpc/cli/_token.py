"""``token issue|verify|revoke``: talk to a running TokenService.

Secrets come from environment variables or standard input, never from flags:
``BEARER_GRPC_CLIENT_SECRET``, ``BEARER_GRPC_PASSWORD``, ``BEARER_GRPC_REFRESH_TOKEN``,
``BEARER_GRPC_TOKEN`` (the token to verify or revoke, or the caller's own token when
revoking by id).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Final

from bearer_grpc.cli._connect import add_tls_options, open_channel
from bearer_grpc.cli._options import csv, option, read_secret
from bearer_grpc.cli._output import emit

if TYPE_CHECKING:
    import grpc
    from google.protobuf.message import Message

    from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

TIMEOUT_SECONDS = 10.0

COMMANDS: Final = {"token": "issue, verify or revoke tokens on a server"}
"""The command this module adds, with its one-line help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``token`` command with its options."""
    token = commands.add_parser("token", help=COMMANDS["token"])
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")

    issue = actions.add_parser(
        "issue",
        help="get an access token (secret/password from env or stdin)",
    )
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--client-id", help="client credentials (secret: BEARER_GRPC_CLIENT_SECRET)")
    who.add_argument("--username", help="password grant (password: BEARER_GRPC_PASSWORD)")
    who.add_argument(
        "--refresh", action="store_true", help="refresh grant (token: BEARER_GRPC_REFRESH_TOKEN)"
    )
    issue.add_argument("--scopes", type=csv, default=[], help="requested scopes: a,b")
    issue.add_argument("--audience", default="", help="requested audience")
    issue.set_defaults(run=_issue)

    verify = actions.add_parser("verify", help="check a token (BEARER_GRPC_TOKEN or stdin)")
    verify.add_argument("--audience", required=True, help="the audience the token must name")
    verify.add_argument("--scopes", type=csv, default=[], help="scopes the token must have")
    verify.set_defaults(run=_verify)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a token (BEARER_GRPC_TOKEN or stdin), or --token-id (own token, or an "
        "admin token: scope bearer-grpc:admin, audience bearer-grpc)",
    )
    revoke.add_argument(
        "--token-id",
        help="revoke by jti; authenticates with BEARER_GRPC_TOKEN (own token or admin scope)",
    )
    revoke.set_defaults(run=_revoke)

    for sub in (issue, verify, revoke):
        option(sub, "--target", default="127.0.0.1:50051", help="TokenService address HOST:PORT")
        add_tls_options(sub)
        sub.add_argument("--json", action="store_true", help="machine-readable output")


def _stub(args: argparse.Namespace) -> tuple[grpc.Channel, pb_grpc.TokenServiceStub]:
    from bearer_grpc.v1 import token_service_pb2_grpc as pb_grpc

    channel = open_channel(args)
    return channel, pb_grpc.TokenServiceStub(channel)


def _issue(args: argparse.Namespace) -> int:
    from bearer_grpc.v1 import token_service_pb2 as pb

    request = pb.IssueTokenRequest(scopes=args.scopes, audience=args.audience)
    if args.client_id:
        request.client_credentials.client_id = args.client_id
        request.client_credentials.client_secret = read_secret("CLIENT_SECRET", "client secret: ")
    elif args.username:
        request.password.username = args.username
        request.password.password = read_secret("PASSWORD", "password: ")
    else:
        request.refresh_token.refresh_token = read_secret("REFRESH_TOKEN", "refresh token: ")
    channel, stub = _stub(args)
    with channel:
        response = stub.IssueToken(request, timeout=TIMEOUT_SECONDS)
    data = {
        "access_token": response.access_token,
        "token_type": response.token_type,
        "expires_in": response.expires_in,
        "scopes": list(response.scopes),
    }
    if response.refresh_token:
        data["refresh_token"] = response.refresh_token
        data["refresh_expires_in"] = response.refresh_expires_in
    emit(args.json, data, response.access_token)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from bearer_grpc.v1 import token_service_pb2 as pb

    token = read_secret("TOKEN", "token: ")
    request = pb.VerifyTokenRequest(
        token=token, audience=args.audience, required_scopes=args.scopes
    )
    channel, stub = _stub(args)
    with channel:
        response = stub.VerifyToken(request, timeout=TIMEOUT_SECONDS)
    data = _as_json(response) if args.json else None
    if response.active:
        text = (
            f"active: sub={response.subject} scopes={','.join(response.scopes)} "
            f"jti={response.token_id} exp={response.expires_at}"
        )
    else:
        text = f"inactive: {response.reason}"
    emit(args.json, data, text)
    return 0 if response.active else 1


def _as_json(message: Message) -> dict[str, Any]:
    """A response as ``--json`` prints it.

    Proto field names; fields at their default are left out, except ``active``
    (protobuf's JSON mapping is loaded only for ``--json``).
    """
    from google.protobuf import json_format

    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    data.setdefault("active", False)
    return data


def _revoke(args: argparse.Namespace) -> int:
    from bearer_grpc.v1 import token_service_pb2 as pb

    channel, stub = _stub(args)
    with channel:
        if args.token_id:
            caller = read_secret("TOKEN", "your token: ")
            request = pb.RevokeTokenRequest(token_id=args.token_id)
            metadata = (("authorization", f"Bearer {caller}"),)
            response = stub.RevokeToken(request, timeout=TIMEOUT_SECONDS, metadata=metadata)
        else:
            request = pb.RevokeTokenRequest(token=read_secret("TOKEN", "token: "))
            response = stub.RevokeToken(request, timeout=TIMEOUT_SECONDS)
    emit(args.json, {"revoked": True, "sequence": response.sequence}, "revoked")
    return 0
