"""``clients``, ``users`` and ``keys``: operator commands on the store.

They need the ``server`` extra (the store and the TokenService's rules), imported only when
one of them is parsed or run.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any, Final

from bearer_grpc.cli._options import (
    add_store_options,
    csv,
    duration,
    key_encryption_key,
    open_configured_store,
    read_secret,
)
from bearer_grpc.cli._output import emit, table

if TYPE_CHECKING:
    from bearer_grpc.store import Account

COMMANDS: Final = {
    "clients": "manage clients",
    "users": "manage users",
    "keys": "manage signing keys",
}
"""The commands this module adds, with their one-line help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``clients``, ``users`` and ``keys`` commands with their options."""
    from bearer_grpc.core.keys import ALGORITHMS
    from bearer_grpc.service.keyring import PUBLISH_DELAY
    from bearer_grpc.service.settings import MAX_KEY_DELAY
    from bearer_grpc.store import AccountKind

    for kind, noun in ((AccountKind.CLIENT, "clients"), (AccountKind.USER, "users")):
        group = commands.add_parser(noun, help=COMMANDS[noun])
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = actions.add_parser("add", help=f"create a {kind.value}")
        add.add_argument("name", help=f"{kind.value} name (the tokens' sub)")
        add.add_argument("--scopes", type=csv, default=[], help="scopes it may request: a,b")
        add.add_argument(
            "--audiences", type=csv, required=True, help="audiences it may address, default first"
        )
        if kind is AccountKind.CLIENT:
            add.add_argument(
                "--certificate-bound",
                action="store_true",
                help="bind its tokens to its mTLS client certificate (RFC 8705): it gets "
                "tokens only over mTLS, each carrying the certificate's thumbprint",
            )
        listing = actions.add_parser("list", help=f"list {noun}")
        remove = actions.add_parser(
            "remove", help=f"delete a {kind.value} and revoke every token it holds"
        )
        remove.add_argument("name")
        revoke = actions.add_parser(
            "revoke", help=f"revoke every token of a {kind.value} issued until now (it stays)"
        )
        revoke.add_argument("name")
        for sub in (add, listing, remove, revoke):
            add_store_options(sub)
            sub.add_argument("--json", action="store_true", help="machine-readable output")
            sub.set_defaults(run=_accounts, kind=kind)

    keys = commands.add_parser("keys", help=COMMANDS["keys"])
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list keys and their state")
    rotate = actions.add_parser("rotate", help="stage a new signing key")
    rotate.add_argument("--algorithm", choices=ALGORITHMS, default="ES256")
    rotate.add_argument(
        "--delay",
        type=_delay,
        default=PUBLISH_DELAY,
        help=(
            f"seconds the new key is published before it signs (default {PUBLISH_DELAY}:"
            " longer than verifiers such as Envoy and Istio cache keys; at most"
            f" {MAX_KEY_DELAY // 86400}d); 0 signs at once, for emergencies only: verifiers"
            " that cached the key set refuse its tokens until they fetch it again"
        ),
    )
    withdraw = actions.add_parser("withdraw", help="withdraw a staged key before it signs")
    withdraw.add_argument("kid", help="the key's kid (see keys list)")
    for sub in (listing, rotate, withdraw):
        add_store_options(sub)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.set_defaults(run=_keys)


def _account_json(p: Account) -> dict[str, Any]:
    row = {
        "name": p.name,
        "scopes": list(p.scopes),
        "audiences": list(p.audiences),
        "created_at": p.created_at,
    }
    if p.certificate_bound:
        row["certificate_bound"] = True
    return row


def _accounts(args: argparse.Namespace) -> int:
    from bearer_grpc.service.admin import Admin
    from bearer_grpc.store import AccountKind

    kind: AccountKind = args.kind
    store = open_configured_store(args)
    try:
        admin = Admin(store)
        if args.action == "add":
            if kind is AccountKind.CLIENT:
                new = admin.add_client(
                    args.name,
                    scopes=args.scopes,
                    audiences=args.audiences,
                    certificate_bound=args.certificate_bound,
                )
                emit(
                    args.json,
                    {"client_id": new.client_id, "client_secret": new.client_secret},
                    f"client_id:     {new.client_id}\nclient_secret: {new.client_secret}\n"
                    "(the secret is shown once: store it now)",
                )
            else:
                password = read_secret("PASSWORD", "password: ", confirm=True)
                admin.add_user(args.name, password, scopes=args.scopes, audiences=args.audiences)
                emit(args.json, {"username": args.name}, f"user {args.name} added")
        elif args.action == "list":
            rows = [_account_json(p) for p in admin.accounts(kind)]
            emit(args.json, rows, table(rows, ("name", "scopes", "audiences")))
        elif args.action == "revoke":
            revoked = admin.revoke_subject(args.name)
            emit(
                args.json,
                {"revoked": args.name, "not_before": revoked.not_before},
                f"every token of {args.name} issued until {_when(revoked.not_before)} revoked",
            )
        else:
            admin.remove(args.name, kind)
            emit(args.json, {"removed": args.name}, f"{kind.value} {args.name} removed")
    finally:
        store.close()
    return 0


def _keys(args: argparse.Namespace) -> int:
    from bearer_grpc.service.admin import Admin

    store = open_configured_store(args)
    try:
        admin = Admin(store)
        if args.action == "withdraw":
            withdrawn = admin.withdraw_key(args.kid)
            emit(args.json, {"withdrawn": withdrawn.kid}, f"withdrew staged key {withdrawn.kid}")
        elif args.action == "rotate":
            record = admin.rotate_key(
                algorithm=args.algorithm, delay=args.delay, kek=key_encryption_key(args)
            )
            emit(
                args.json,
                {"kid": record.kid, "alg": record.alg, "not_before": record.not_before},
                f"staged key {record.kid} ({record.alg}); it signs from {_when(record.not_before)}",
            )
        else:
            rows = [
                {
                    "kid": r.kid,
                    "alg": r.alg,
                    "state": state.value,
                    "not_before": r.not_before,
                    "signs_from": _when(r.not_before),
                }
                for r, state in admin.key_states()
            ]
            emit(args.json, rows, table(rows, ("kid", "alg", "state", "signs_from")))
    finally:
        store.close()
    return 0


def _delay(value: str) -> int:
    """Seconds, plain (any whole number: the key ring bounds it, in one line) or with a
    unit (``90s``, ``15m``, ``2h``, ``1d``)."""
    text = value.strip()
    if text.removeprefix("-").isdigit() and len(text) <= 64:
        return int(text)
    return duration(value)


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
