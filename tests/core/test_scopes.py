"""Scope and name syntax (RFC 6749 §3.3) and the subset rules of issuing."""

from __future__ import annotations

import pytest

from bearer_grpc.core.errors import Forbidden, InvalidRequest
from bearer_grpc.core.scopes import (
    MAX_SCOPE_LENGTH,
    MAX_SCOPES,
    check_name,
    check_scopes,
    grant_audience,
    grant_scopes,
    parse_scope_claim,
)

# --- check_scopes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope", ["orders.read", "a", "!", "~", "x:y/z#1", "A-Z_0-9", "{[]}", "a" * MAX_SCOPE_LENGTH]
)
def test_check_scopes_accepts_rfc6749_scope_tokens(scope: str) -> None:
    assert check_scopes([scope]) == (scope,)


def test_check_scopes_accepts_every_allowed_character() -> None:
    allowed = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
    assert len(allowed) == 0x7F - 0x21 - 2
    assert check_scopes([allowed]) == (allowed,)


@pytest.mark.parametrize(
    "scope",
    [
        "",
        " ",
        "a b",
        'a"b',
        '"',
        "a\\b",
        "\\",
        "a\tb",
        "a\n",
        "\x00",
        "a\x7f",
        "\u00e9",
        "read\u00a0write",
        "a" * (MAX_SCOPE_LENGTH + 1),
    ],
    ids=repr,
)
def test_check_scopes_rejects_invalid_syntax(scope: str) -> None:
    with pytest.raises(InvalidRequest):
        check_scopes(["ok", scope])


@pytest.mark.parametrize("scope", [b"read", 1, None, ["read"]], ids=repr)
def test_check_scopes_rejects_non_strings(scope: object) -> None:
    with pytest.raises(InvalidRequest):
        check_scopes([scope])  # type: ignore[list-item]


def test_check_scopes_dedupes_keeping_first_seen_order() -> None:
    assert check_scopes(["b", "a", "b", "c", "a"]) == ("b", "a", "c")


def test_check_scopes_empty_is_empty() -> None:
    assert check_scopes([]) == ()


def test_check_scopes_accepts_the_maximum_count() -> None:
    scopes = [f"s{i}" for i in range(MAX_SCOPES)]
    assert check_scopes(scopes) == tuple(scopes)


def test_check_scopes_rejects_more_than_the_maximum_count() -> None:
    with pytest.raises(InvalidRequest):
        check_scopes([f"s{i}" for i in range(MAX_SCOPES + 1)])


def test_check_scopes_counts_after_dedupe() -> None:
    scopes = [f"s{i}" for i in range(MAX_SCOPES)] * 2
    assert len(check_scopes(scopes)) == MAX_SCOPES


def test_check_scopes_message_names_what_and_not_the_value() -> None:
    with pytest.raises(InvalidRequest) as info:
        check_scopes(["bad scope"], what="audience")
    assert info.value.message == "invalid audience"
    assert "bad scope" not in str(info.value)


# --- check_name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["svc", "a", "0", "orders-v1", "user@example.com", "a.b_c+d:e-f", "a" * 128]
)
def test_check_name_accepts_valid_names(name: str) -> None:
    assert check_name(name, what="client") == name


@pytest.mark.parametrize(
    "name",
    ["", "-abc", ".abc", "_abc", "a b", "a/b", "a$b", "\u00e9", "abc\n", "a" * 129, "a\x00"],
    ids=repr,
)
def test_check_name_rejects_invalid_names(name: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_name(name, what="client")
    assert info.value.message == "invalid client"


@pytest.mark.parametrize("name", [None, 1, b"svc"], ids=repr)
def test_check_name_rejects_non_strings(name: object) -> None:
    with pytest.raises(InvalidRequest):
        check_name(name, what="user")  # type: ignore[arg-type]


# --- grant_scopes / grant_audience -------------------------------------------------------


def test_grant_scopes_empty_request_grants_all_allowed() -> None:
    assert grant_scopes([], ["a", "b", "c"]) == ("a", "b", "c")


def test_grant_scopes_subset_is_granted_as_requested() -> None:
    assert grant_scopes(["c", "a"], ["a", "b", "c"]) == ("c", "a")


def test_grant_scopes_equal_set_is_granted() -> None:
    assert grant_scopes(["a", "b"], ["a", "b"]) == ("a", "b")


@pytest.mark.parametrize(
    "requested", [["admin"], ["a", "admin"], ["A"], ["a "]], ids=["other", "extra", "case", "space"]
)
def test_grant_scopes_not_allowed_is_forbidden(requested: list[str]) -> None:
    with pytest.raises(Forbidden):
        grant_scopes(requested, ["a", "b"])


def test_grant_scopes_nothing_allowed_grants_nothing() -> None:
    assert grant_scopes([], []) == ()
    with pytest.raises(Forbidden):
        grant_scopes(["a"], [])


def test_grant_audience_empty_request_grants_first_allowed() -> None:
    assert grant_audience("", ["orders", "billing"]) == "orders"


def test_grant_audience_allowed_request_is_granted() -> None:
    assert grant_audience("billing", ["orders", "billing"]) == "billing"


@pytest.mark.parametrize("requested", ["shipping", "Orders", "order", "orders "])
def test_grant_audience_not_allowed_is_forbidden(requested: str) -> None:
    with pytest.raises(Forbidden):
        grant_audience(requested, ["orders", "billing"])


@pytest.mark.parametrize("requested", ["", "orders"])
def test_grant_audience_without_allowed_audiences_is_forbidden(requested: str) -> None:
    with pytest.raises(Forbidden):
        grant_audience(requested, [])


# --- parse_scope_claim ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, frozenset()),
        ("", frozenset()),
        ("a", frozenset({"a"})),
        ("a b  c", frozenset({"a", "b", "c"})),
        ("a a", frozenset({"a"})),
    ],
)
def test_parse_scope_claim(value: str | None, expected: frozenset[str]) -> None:
    assert parse_scope_claim(value) == expected


@pytest.mark.parametrize("value", [["a"], 1, True, {"a": 1}, b"a"], ids=repr)
def test_parse_scope_claim_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="not a string"):
        parse_scope_claim(value)


def test_check_audience_accepts_urls_and_refuses_spaces_quotes_and_oversize() -> None:
    from bearer_grpc.core.errors import InvalidRequest
    from bearer_grpc.core.scopes import check_audience

    assert check_audience("https://orders.example.com/v1") == "https://orders.example.com/v1"
    for bad in ("", "a b", 'a"b', "a\\b", "x" * 257, "caf\u00e9"):
        with pytest.raises(InvalidRequest):
            check_audience(bad)
