"""Operator commands ``clients``, ``users``, ``keys`` and ``audit``, on a store or a server.

They act on the store itself or, with ``--target``, through a running server's
AdminService.

On the store (``--data-dir``/``--store``) they need the ``server`` extra and are how a
deployment is bootstrapped: the first admin client is made here. With ``--target`` they
need only the base install and an admin token (``BEARER_GRPC_ADMIN_TOKEN``) or an admin
client's credentials (``BEARER_GRPC_CLIENT_ID``, ``BEARER_GRPC_CLIENT_SECRET``) in the
environment. Both ways print the same, ``--json`` included. Heavy modules are imported
when a command runs.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Final

from bearer_grpc.cli._options import (
    add_store_options,
    csv,
    duration,
    key_encryption_key,
    open_configured_store,
    read_secret,
)
from bearer_grpc.cli._output import emit, table
from bearer_grpc.cli._remote import add_target_options, local_backend, remote_backend

if TYPE_CHECKING:
    from bearer_grpc.cli._remote import AdminBackend

COMMANDS: Final = {
    "clients": "manage clients",
    "users": "manage users",
    "keys": "manage signing keys",
    "audit": "read the audit trail",
}
"""The commands this module adds, with their one-line help."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``clients``, ``users``, ``keys`` and ``audit`` commands with their options."""
    subs = _register_accounts(commands)
    subs += _register_keys(commands)
    audit = commands.add_parser("audit", help=COMMANDS["audit"])
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the newest audit events, newest first")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.set_defaults(run=_audit)
    subs.append(listing)
    for sub in subs:
        add_store_options(sub)
        add_target_options(sub)
        sub.add_argument("--json", action="store_true", help="machine-readable output")


def _register_accounts(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    every = []
    for kind, noun in (("client", "clients"), ("user", "users")):
        subs = []
        group = commands.add_parser(noun, help=COMMANDS[noun])
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = actions.add_parser("add", help=f"create a {kind}")
        add.add_argument("name", help=f"{kind} name (the tokens' sub)")
        add.add_argument("--scopes", type=csv, default=[], help="scopes it may request: a,b")
        add.add_argument(
            "--audiences", type=csv, required=True, help="audiences it may address, default first"
        )
        if kind == "client":
            add.add_argument(
                "--certificate-bound",
                action="store_true",
                help="bind its tokens to its mTLS client certificate (RFC 8705): it gets "
                "tokens only over mTLS, each carrying the certificate's thumbprint",
            )
        listing = actions.add_parser("list", help=f"list {noun}")
        remove = actions.add_parser(
            "remove", help=f"delete a {kind} and revoke every token it holds"
        )
        remove.add_argument("name")
        revoke = actions.add_parser(
            "revoke-all",
            aliases=["revoke"],
            help=f"revoke every token of a {kind} issued until now (it stays)",
        )
        revoke.add_argument("name")
        subs += [add, listing, remove, revoke]
        if kind == "client":
            update = actions.add_parser("update", help="replace a client's scopes and audiences")
            update.add_argument("name")
            update.add_argument("--scopes", type=csv, default=[], help="its scopes: a,b")
            update.add_argument("--audiences", type=csv, required=True, help="its audiences")
            rotate = actions.add_parser(
                "rotate-secret", help="give a client a new secret (printed once)"
            )
            rotate.add_argument("name")
            rotate.add_argument(
                "--old-secret-valid-for",
                type=duration,
                default=0,
                help="how long the old secret keeps working (90s, 15m, 1d; at most 30d); "
                "default 0: it stops at once",
            )
            subs += [update, rotate]
        else:
            password = actions.add_parser(
                "set-password", help="replace a user's password (from a prompt or stdin)"
            )
            password.add_argument("name")
            subs.append(password)
        for sub in subs:
            sub.set_defaults(run=_accounts, kind=kind)
        every += subs
    return every


def _register_keys(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    from bearer_grpc.core.keys import ALGORITHMS
    from bearer_grpc.service.settings import DEFAULT_KEY_PUBLISH_DELAY, MAX_KEY_DELAY

    keys = commands.add_parser("keys", help=COMMANDS["keys"])
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list keys and their state")
    rotate = actions.add_parser("rotate", help="stage a new signing key")
    rotate.add_argument("--algorithm", choices=ALGORITHMS, default="ES256")
    rotate.add_argument(
        "--delay",
        type=_delay,
        default=DEFAULT_KEY_PUBLISH_DELAY,
        help=(
            f"seconds the new key is published before it signs (default"
            f" {DEFAULT_KEY_PUBLISH_DELAY}: longer than verifiers such as Envoy and Istio"
            f" cache keys; at most {MAX_KEY_DELAY // 86400}d); 0 signs at once, for"
            " emergencies only: verifiers that cached the key set refuse its tokens until"
            " they fetch it again"
        ),
    )
    withdraw = actions.add_parser("withdraw", help="withdraw a staged key before it signs")
    withdraw.add_argument(
        "kid", help="the key's kid (see keys list); give one that starts with - after --"
    )
    for sub in (listing, rotate, withdraw):
        sub.set_defaults(run=_keys)
    return [listing, rotate, withdraw]


def _backend(args: argparse.Namespace) -> AdminBackend:
    """The AdminService at ``--target``, or the store itself."""
    if args.target:
        return remote_backend(args)
    from bearer_grpc.service.admin import Admin

    store = open_configured_store(args)
    return local_backend(Admin(store), store.close, lambda: key_encryption_key(args))


def _accounts(args: argparse.Namespace) -> int:
    kind: str = args.kind
    action = "revoke-all" if args.action == "revoke" else args.action
    password = None
    if action in ("add", "set-password") and kind == "user":
        password = read_secret("PASSWORD", "password: ", confirm=True)
    backend = _backend(args)
    try:
        _account_action(args, action, kind, backend, password)
    finally:
        backend.close()
    return 0


def _account_action(
    args: argparse.Namespace,
    action: str,
    kind: str,
    backend: AdminBackend,
    password: str | None,
) -> None:
    name = getattr(args, "name", "")
    if action == "add" and password is None:
        client_id, secret = backend.add_client(
            name, args.scopes, args.audiences, args.certificate_bound
        )
        emit(
            args.json,
            {"client_id": client_id, "client_secret": secret},
            f"client_id:     {client_id}\nclient_secret: {secret}\n"
            "(the secret is shown once: store it now)",
        )
    elif action == "add":
        assert password is not None
        backend.add_user(name, password, args.scopes, args.audiences)
        emit(args.json, {"username": name}, f"user {name} added")
    elif action == "list":
        rows = backend.accounts(kind)
        emit(args.json, rows, table(rows, ("name", "scopes", "audiences")))
    elif action == "revoke-all":
        not_before = backend.revoke_subject(name)
        emit(
            args.json,
            {"revoked": name, "not_before": not_before},
            f"every token of {name} issued until {_when(not_before)} revoked",
        )
    elif action == "update":
        row = backend.update_client(name, args.scopes, args.audiences)
        emit(args.json, row, table([row], ("name", "scopes", "audiences")))
    elif action == "rotate-secret":
        secret, until = backend.rotate_secret(name, args.old_secret_valid_for)
        old = (
            f"the old secret works until {_when(until)}" if until else "the old one no longer works"
        )
        emit(
            args.json,
            {"client_id": name, "client_secret": secret, "old_secret_valid_until": until},
            f"client_id:     {name}\nclient_secret: {secret}\n"
            f"(the secret is shown once: store it now; {old})",
        )
    elif action == "set-password":
        assert password is not None
        backend.set_password(name, password)
        emit(args.json, {"username": name}, f"password of {name} replaced")
    else:
        backend.remove(name, kind)
        emit(args.json, {"removed": name}, f"{kind} {name} removed")


def _keys(args: argparse.Namespace) -> int:
    backend = _backend(args)
    try:
        if args.action == "withdraw":
            kid = backend.withdraw_key(args.kid)
            emit(args.json, {"withdrawn": kid}, f"withdrew staged key {kid}")
        elif args.action == "rotate":
            staged = backend.rotate_key(args.algorithm, args.delay)
            emit(
                args.json,
                staged,
                f"staged key {staged['kid']} ({staged['alg']}); it signs from "
                f"{_when(staged['not_before'])}",
            )
        else:
            rows = [{**row, "signs_from": _when(row["not_before"])} for row in backend.key_rows()]
            emit(args.json, rows, table(rows, ("kid", "alg", "state", "signs_from")))
    finally:
        backend.close()
    return 0


def _audit(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 10_000:
        raise ValueError("--limit must be 1..10000")
    backend = _backend(args)
    try:
        rows = backend.audit_events(args.limit)
    finally:
        backend.close()
    shown = [{**row, "when": _when(row["time"])} for row in rows]
    emit(args.json, rows, table(shown, ("sequence", "when", "actor", "action", "target")))
    return 0


def _delay(value: str) -> int:
    """Seconds, plain or with a unit (``90s``, ``15m``, ``2h``, ``1d``).

    A plain value may be any whole number: the key ring bounds it, in one line.
    """
    text = value.strip()
    if text.removeprefix("-").isdigit() and len(text) <= 64:
        return int(text)
    return duration(value)


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
