"""The credential on the wire: malformed authorization metadata, every kind and flavour.

RFC 6750 §2.1 / RFC 7235 §2.1: exactly one ``authorization``
entry holding ``Bearer`` (any ASCII case), one or more spaces, one b64token. Anything
else is UNAUTHENTICATED (``TOKEN_MALFORMED``, or ``TOKEN_MISSING`` when no
``authorization`` entry exists) before any handler runs, for all four RPC kinds on the
sync and the aio server. tests/interceptors/test_metadata.py covers the unary basics
(two entries, Basic/Token schemes, ``authorization-bin``); this file extends them to
every kind and to the hostile spellings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import grpc
import pytest

from bearer_grpc.core.errors import TokenMalformed, TokenMissing
from bearer_grpc.core.header import MAX_AUTHORIZATION_BYTES, bearer_token
from bearer_grpc.testing import KINDS, Kind, call, path, reason_of
from tests.harness import ECHO_SCOPE, Protected, refusal
from tests.security.conftest import Deployments

Metadata = tuple[tuple[str, str | bytes], ...]
MetadataFor = Callable[[str], Metadata]


def _auth(*values: str) -> Metadata:
    return tuple(("authorization", value) for value in values)


MALFORMED: dict[str, MetadataFor] = {
    "scheme_basic": lambda t: _auth(f"Basic {t}"),
    "scheme_token": lambda t: _auth(f"Token {t}"),
    "scheme_missing": lambda t: _auth(t),
    "scheme_glued_to_token": lambda t: _auth(f"Bearer{t}"),
    "scheme_only": lambda t: _auth("Bearer"),
    "empty_token": lambda t: _auth("Bearer "),
    "empty_value": lambda t: _auth(""),
    "two_tokens": lambda t: _auth(f"Bearer {t} {t}"),
    "bearer_twice": lambda t: _auth(f"Bearer Bearer {t}"),
    "comma_joined_values": lambda t: _auth(f"Bearer {t}, Bearer {t}"),
    "quoted_token": lambda t: _auth(f'Bearer "{t}"'),
    "token_parameter_form": lambda t: _auth(f"Bearer token={t}"),
    "two_authorization_entries": lambda t: _auth(f"Bearer {t}", f"Bearer {t}"),
    "valid_entry_and_garbage_entry": lambda t: _auth(f"Bearer {t}", "garbage"),
    "garbage_entry_and_valid_entry": lambda t: _auth("garbage", f"Bearer {t}"),
}
MISSING: dict[str, MetadataFor] = {
    "authorization_bin_only": lambda t: (("authorization-bin", f"Bearer {t}".encode()),),
    "token_in_other_key": lambda t: (("x-authorization", f"Bearer {t}"),),
    "token_in_bearer_key": lambda t: (("bearer", t),),
}
ACCEPTED: dict[str, MetadataFor] = {
    "bearer": lambda t: _auth(f"bearer {t}"),
    "BEARER": lambda t: _auth(f"BEARER {t}"),
    "bEaReR": lambda t: _auth(f"bEaReR {t}"),
    "two_spaces": lambda t: _auth(f"Bearer  {t}"),
    "with_authorization_bin_beside": lambda t: (
        *_auth(f"Bearer {t}"),
        ("authorization-bin", b"\x00\x01"),
    ),
}
FLAVOURS = ("sync", "aio")
EXPECTED_REQUESTS: dict[Kind, list[tuple[bytes, ...]]] = {
    "unary_unary": [(b"a",)],
    "unary_stream": [(b"a",), (b"a",)],
    "stream_unary": [(b"a", b"b")],
    "stream_stream": [(b"a",), (b"b",)],
}


def _grid(cases: dict[str, MetadataFor]) -> list[tuple[str, str, str]]:
    return list(itertools.product(cases, FLAVOURS, KINDS))


def _ids(grid: list[tuple[str, str, str]]) -> list[str]:
    return ["-".join(row) for row in grid]


def _server(deployments: Deployments, flavour: str) -> Protected:
    return deployments["ES256"].servers[flavour]


def _refused(server: Protected, kind: Kind, metadata: Metadata) -> grpc.RpcError:
    before = server.echo.calls
    error = refusal(lambda: call(server.channel, kind, metadata=metadata))
    assert server.echo.calls == before, "the handler ran"
    return error


MALFORMED_GRID = _grid(MALFORMED)


@pytest.mark.parametrize(("case", "flavour", "kind"), MALFORMED_GRID, ids=_ids(MALFORMED_GRID))
def test_malformed_authorization_is_unauthenticated(
    deployments: Deployments, case: str, flavour: str, kind: Kind
) -> None:
    token = deployments["ES256"].kit.legit()
    error = _refused(_server(deployments, flavour), kind, MALFORMED[case](token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "TOKEN_MALFORMED"
    assert token not in (error.details() or "")


MISSING_GRID = _grid(MISSING)


@pytest.mark.parametrize(("case", "flavour", "kind"), MISSING_GRID, ids=_ids(MISSING_GRID))
def test_token_outside_authorization_is_no_credential(
    deployments: Deployments, case: str, flavour: str, kind: Kind
) -> None:
    token = deployments["ES256"].kit.legit()
    error = _refused(_server(deployments, flavour), kind, MISSING[case](token))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(error) == "TOKEN_MISSING"


ACCEPTED_GRID = _grid(ACCEPTED)


@pytest.mark.parametrize(("case", "flavour", "kind"), ACCEPTED_GRID, ids=_ids(ACCEPTED_GRID))
def test_scheme_spellings_and_spacing_are_accepted(
    deployments: Deployments, case: str, flavour: str, kind: Kind
) -> None:
    token = deployments["ES256"].kit.legit()
    server = _server(deployments, flavour)
    answers = call(server.channel, kind, metadata=ACCEPTED[case](token))
    assert [answer.requests for answer in answers] == EXPECTED_REQUESTS[kind]
    assert {(a.subject, a.scopes) for a in answers} == {("svc-checkout", (ECHO_SCOPE,))}


@pytest.mark.parametrize(("flavour", "kind"), list(itertools.product(FLAVOURS, KINDS)))
def test_oversized_authorization_never_reaches_the_handler(
    deployments: Deployments, flavour: str, kind: Kind
) -> None:
    """Past gRPC's 8 KiB metadata budget the transport may refuse first: never OK."""
    kit = deployments["ES256"].kit
    token = kit.legit(pad="x" * MAX_AUTHORIZATION_BYTES)
    error = _refused(_server(deployments, flavour), kind, _auth(f"Bearer {token}"))
    assert error.code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_value_just_over_the_bound_is_malformed(deployments: Deployments, flavour: str) -> None:
    """Under gRPC's own limit but over ours (bound raised to let it through): malformed."""
    server = _server(deployments, flavour)
    value = "Bearer " + "a" * (MAX_AUTHORIZATION_BYTES - 6)
    assert len(value) == MAX_AUTHORIZATION_BYTES + 1
    with pytest.raises(TokenMalformed):
        bearer_token([("authorization", value)])
    channel = grpc.insecure_channel(server.target, options=[("grpc.max_metadata_size", 64 * 1024)])
    with channel:
        before = server.echo.calls
        error = refusal(lambda: call(channel, "unary_unary", metadata=_auth(value)))
        assert error.code() in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert server.echo.calls == before


UNSENDABLE = {
    "tab_separator": "Bearer\tabc",
    "latin1_letter": "Bearer t\u00e9st",
    "cyrillic_e_in_scheme": "B\u0435arer abc",
    "fullwidth_scheme": "\uff22earer abc",
    "nul": "Bearer abc\x00",
    "newline": "Bearer abc\ndef",
    "del": "Bearer abc\x7f",
}


@pytest.mark.parametrize("value", UNSENDABLE.values(), ids=UNSENDABLE.keys())
def test_unsendable_value_is_malformed(deployments: Deployments, value: str) -> None:
    """gRPC Python will not send these; the parser the interceptors use refuses them."""
    with pytest.raises(TokenMalformed):
        bearer_token([("authorization", value)])
    unary = _server(deployments, "sync").channel.unary_unary(path("Unary"))
    with pytest.raises(Exception) as failed:  # grpc's own client-side check
        unary(b"hi", metadata=_auth(value), timeout=10)
    if isinstance(failed.value, grpc.RpcError):
        assert failed.value.code() != grpc.StatusCode.OK


def test_binary_authorization_value_is_malformed() -> None:
    """A bytes value under ``authorization`` (only -bin keys carry bytes) is no token."""
    with pytest.raises(TokenMalformed):
        bearer_token([("authorization", b"Bearer abc")])
    with pytest.raises(TokenMissing):
        bearer_token([("authorization-bin", b"Bearer abc")])
