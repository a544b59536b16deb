"""bearer_token: exactly one `authorization: Bearer <b64token>` entry (RFC 6750 §2.1); the
scheme is case-insensitive and ``authorization-bin`` carries no credential."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bearer_grpc.core.errors import TokenMalformed, TokenMissing
from bearer_grpc.core.header import (
    MAX_AUTHORIZATION_BYTES,
    authorization_value,
    bearer_token,
    parse_bearer,
)


def auth(value: str | bytes) -> list[tuple[str, str | bytes]]:
    return [("authorization", value)]


def test_single_entry_returns_token() -> None:
    assert bearer_token(auth("Bearer abc.def.ghi")) == "abc.def.ghi"


def test_other_metadata_around_the_entry_is_ignored() -> None:
    metadata = [("user-agent", "grpc-python"), ("authorization", "Bearer tok"), ("x-id", "1")]
    assert bearer_token(metadata) == "tok"


@pytest.mark.parametrize(
    "metadata", [None, [], [("user-agent", "x")]], ids=["none", "empty", "other"]
)
def test_zero_entries_is_missing(metadata: list[tuple[str, str]] | None) -> None:
    with pytest.raises(TokenMissing):
        bearer_token(metadata)


@pytest.mark.parametrize(
    "key",
    ["authorization-bin", "x-authorization", "grpc-authorization", "authorization2", "auth"],
)
def test_other_keys_are_never_credentials(key: str) -> None:
    with pytest.raises(TokenMissing):
        bearer_token([(key, "Bearer abc")])


def test_authorization_bin_does_not_count_as_an_entry() -> None:
    metadata = [("authorization-bin", b"Bearer evil"), ("authorization", "Bearer good")]
    assert bearer_token(metadata) == "good"


@pytest.mark.parametrize(
    "values",
    [
        ("Bearer abc", "Bearer abc"),
        ("Bearer abc", "Bearer def"),
        ("Bearer abc", "Basic dXNlcjpwdw=="),
        ("Bearer abc", "Bearer abc", "Bearer abc"),
    ],
    ids=["same", "different", "one-invalid", "three"],
)
def test_several_entries_are_malformed_never_first_wins(values: tuple[str, ...]) -> None:
    with pytest.raises(TokenMalformed):
        bearer_token([("authorization", v) for v in values])


def test_duplicate_entry_in_other_case_is_malformed() -> None:
    with pytest.raises(TokenMalformed):
        bearer_token([("authorization", "Bearer abc"), ("Authorization", "Bearer def")])


def test_bytes_value_is_malformed() -> None:
    with pytest.raises(TokenMalformed):
        bearer_token(auth(b"Bearer abc"))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    assert bearer_token(auth(f"{scheme} abc")) == "abc"


@pytest.mark.parametrize(
    "scheme",
    [
        "B\u0435arer",  # Cyrillic small ie
        "BEAR\u0415R",  # Cyrillic capital ie
        "\uff22\uff45\uff41\uff52\uff45\uff52",  # fullwidth "Bearer"
        "Bear\uff45r",  # one fullwidth letter
    ],
    ids=["cyrillic-e", "cyrillic-E", "fullwidth", "one-fullwidth"],
)
def test_non_ascii_scheme_lookalike_is_malformed(scheme: str) -> None:
    with pytest.raises(TokenMalformed):
        bearer_token(auth(f"{scheme} abc"))


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearerabc",
        "Bearer",
        "Bearer ",
        "Bearer   ",
        "",
        "Bearer a b",
        "Bearer Bearer x",
        "Bearer a,Bearer b",
        "Bearer a, Bearer b",
        "Bearer a,b",
        'Bearer "abc"',
        "Bearer token=abc",
        "Bearer abc;",
        " Bearer abc",
        "Bearer abc ",
        "Bearer abc\n",
        "Bearer abc\r\n",
        "\tBearer abc",
        "Bearer\tabc",
        "x Bearer abc",
        "Bearer ab\x00c",
        "Bearer =abc",
        "Bearer a=b",
        "Bearer ==",
        "Bearer ab?c",
        "Bearer ab%2Fc",
    ],
)
def test_value_not_one_bearer_b64token_is_malformed(value: str) -> None:
    with pytest.raises(TokenMalformed):
        bearer_token(auth(value))


@pytest.mark.parametrize(
    "token",
    ["ab\u00e9c", "abc\u00a0", "\uff41bc", "ab\u200bc", "abc\u2028"],
    ids=["e-acute", "nbsp", "fullwidth-a", "zero-width-space", "line-separator"],
)
def test_non_ascii_in_token_is_malformed(token: str) -> None:
    with pytest.raises(TokenMalformed):
        bearer_token(auth(f"Bearer {token}"))


@pytest.mark.parametrize(
    "token",
    ["a-b.c_d~e+f/g", "abc=", "abc==", "a", "-._~+/", "x" * 100 + "===", "ABCxyz0189"],
)
def test_b64token_grammar_is_accepted(token: str) -> None:
    assert bearer_token(auth(f"Bearer {token}")) == token


def test_several_spaces_after_scheme_are_accepted() -> None:
    # RFC 6750 §2.1: "Bearer" 1*SP b64token
    assert bearer_token(auth("Bearer   abc")) == "abc"


def test_value_at_size_limit_is_accepted() -> None:
    value = "Bearer " + "a" * (MAX_AUTHORIZATION_BYTES - len("Bearer "))
    assert len(value) == MAX_AUTHORIZATION_BYTES
    assert bearer_token(auth(value)) == value[len("Bearer ") :]


def test_oversize_value_is_malformed() -> None:
    value = "Bearer " + "a" * (MAX_AUTHORIZATION_BYTES - len("Bearer ") + 1)
    with pytest.raises(TokenMalformed):
        bearer_token(auth(value))


def test_max_bytes_argument_bounds_the_value() -> None:
    assert bearer_token(auth("Bearer abc"), max_bytes=10) == "abc"
    with pytest.raises(TokenMalformed):
        bearer_token(auth("Bearer abcd"), max_bytes=10)


def test_malformed_error_does_not_echo_the_value() -> None:
    with pytest.raises(TokenMalformed) as info:
        bearer_token(auth("Bearer s3cret-token with-space"))
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(info.value)


_values = st.one_of(
    st.text(),
    st.builds(
        str.__add__,
        st.sampled_from(["Bearer ", "bearer  ", "BEARER ", "Bearer", "Basic "]),
        st.text(),
    ),
    st.from_regex(r"\A[Bb]earer +[A-Za-z0-9._~+/-]+=*\Z"),
)


@pytest.mark.slow
@settings(database=None, max_examples=300, deadline=None)
@given(value=_values)
def test_property_any_value_yields_a_substring_or_an_auth_error(value: str) -> None:
    try:
        token = bearer_token(auth(value))
    except (TokenMissing, TokenMalformed):
        return
    assert token
    assert token in value


@pytest.mark.slow
@settings(database=None, max_examples=200, deadline=None)
@given(
    metadata=st.lists(
        st.tuples(
            st.sampled_from(["authorization", "authorization-bin", "x-other"]),
            st.one_of(_values, st.binary()),
        ),
        max_size=3,
    )
)
def test_property_any_metadata_yields_the_single_entry_or_an_auth_error(
    metadata: list[tuple[str, str | bytes]],
) -> None:
    entries = [v for k, v in metadata if k == "authorization"]
    try:
        token = bearer_token(metadata)
    except TokenMissing:
        assert entries == []
        return
    except TokenMalformed:
        assert entries
        return
    assert len(entries) == 1
    assert isinstance(entries[0], str)
    assert token in entries[0]


def test_authorization_value_is_the_single_entry_unparsed() -> None:
    assert authorization_value([("x-other", "a"), ("authorization", "Basic  x ")]) == "Basic  x "


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        (None, TokenMissing),
        ([("authorization-bin", b"Bearer abc")], TokenMissing),
        ([("authorization", "Bearer a"), ("Authorization", "Bearer a")], TokenMalformed),
        ([("authorization", b"Bearer abc")], TokenMalformed),
        ([("authorization", "Bearer " + "a" * MAX_AUTHORIZATION_BYTES)], TokenMalformed),
    ],
)
def test_authorization_value_refuses_what_bearer_token_refuses(
    metadata: list[tuple[str, str | bytes]] | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        authorization_value(metadata)
    with pytest.raises(error):
        bearer_token(metadata)


@settings(database=None, max_examples=200, deadline=None)
@given(value=_values)
def test_property_bearer_token_is_parse_bearer_of_authorization_value(value: str) -> None:
    def outcome(decide: Any) -> object:
        try:
            return decide()
        except (TokenMissing, TokenMalformed) as err:
            return type(err)

    assert outcome(lambda: bearer_token(auth(value))) == outcome(
        lambda: parse_bearer(authorization_value(auth(value)))
    )
