"""The auth flow's cache-hit shortcut decides exactly what the full header parse decides.

:func:`bearer_grpc.core.flow.admit` skips the b64token regular expression when the single
``authorization`` value is literally ``"Bearer " + <cached token>``. These tests pin that
it is a shortcut only: for every metadata, ``admit`` returns what parsing with
:func:`bearer_token` and then looking the parsed token up would (the same refusal, the
same caller, or a pending verification of the same string), so no other spelling of a
cached token is a hit without going through the full parse.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bearer_grpc.core.admission import Pending, admit
from bearer_grpc.core.errors import AuthError, InsufficientScope, TokenRevoked
from bearer_grpc.core.header import MAX_AUTHORIZATION_BYTES, bearer_token
from bearer_grpc.core.keys import PublicKeySet, SigningKey
from bearer_grpc.core.policy import Rule
from bearer_grpc.core.tokens import TokenVerifier, issue_access_token
from bearer_grpc.core.verification import LocalVerification
from bearer_grpc.testing import FrozenClock

ISSUER = "https://issuer.test"
AUDIENCE = "orders"
NOW = 1_800_000_000
RULE = Rule(scopes=("orders.read",))


@pytest.fixture(scope="module")
def setup() -> tuple[LocalVerification, str, str]:
    """A verifier with one cached token, and a valid token it has not seen."""
    key = SigningKey.generate()
    local = LocalVerification(
        issuer=ISSUER,
        audience=AUDIENCE,
        clock=FrozenClock(NOW),
        keys=PublicKeySet({"keys": [dict(key.jwk)]}),
    )

    def token() -> str:
        return issue_access_token(
            key,
            issuer=ISSUER,
            subject="svc",
            audience=AUDIENCE,
            scopes=["orders.read"],
            client_id="svc",
            lifetime=600,
            now=NOW,
        ).token

    cached, fresh = token(), token()
    local.verify(cached)
    return local, cached, fresh


def reference(metadata: Any, local: LocalVerification) -> tuple[str, Any]:
    """What admit must decide: the full parse, then a lookup of what it yields."""
    try:
        token = bearer_token(metadata)
        principal = local.lookup(token)
        if principal is None:
            return ("pending", token)
        return ("caller", TokenVerifier.authorize(principal, RULE.scopes))
    except AuthError as err:
        return ("refused", type(err))


def decided(metadata: Any, local: LocalVerification) -> tuple[str, Any]:
    try:
        step = admit(RULE, metadata, local.lookup)
    except AuthError as err:
        return ("refused", type(err))
    if isinstance(step, Pending):
        return ("pending", step.token)
    return ("caller", step)


SPELLINGS = [
    "Bearer {t}",
    "bearer {t}",
    "BEARER {t}",
    "bEaReR {t}",
    "Bearer  {t}",
    "Bearer {t} ",
    "Bearer {t}\t",
    " Bearer {t}",
    "Bearer\t{t}",
    "Bearer {t}=",
    "Bearer {t}x",
    "Bearer {t}.",
    "Bearer={t}",
    "Bearer{t}",
    "Basic {t}",
    "Bearer {t} {t}",
    "Bearer {t}\n",
    "Bearer \u00a0{t}",
    "Bearer {t}\u0130",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_a_cached_token_is_decided_as_the_full_parse_would(
    setup: tuple[LocalVerification, str, str], spelling: str
) -> None:
    local, cached, _ = setup
    metadata = (("user-agent", "grpc-python"), ("authorization", spelling.format(t=cached)))
    assert decided(metadata, local) == reference(metadata, local)


def test_only_the_exact_token_string_is_a_hit(setup: tuple[LocalVerification, str, str]) -> None:
    local, cached, _ = setup
    trailing_space = (("authorization", f"Bearer {cached} "),)
    extended = (("authorization", f"Bearer {cached}="),)
    assert decided(trailing_space, local) == ("refused", type(_malformed()))
    assert decided(extended, local) == ("pending", cached + "=")
    step = decided((("authorization", f"Bearer {cached}"),), local)
    assert step[0] == "caller" and step[1].subject == "svc"


def test_a_cached_token_still_needs_exactly_one_bounded_entry(
    setup: tuple[LocalVerification, str, str],
) -> None:
    local, cached, _ = setup
    value = f"Bearer {cached}"
    for metadata in [
        (("authorization", value), ("authorization", value)),
        (("authorization", value), ("Authorization", value)),
        (("authorization", value.encode()),),
        (("authorization", value + "=" * (MAX_AUTHORIZATION_BYTES - len(value) + 1)),),
        (("authorization-bin", value),),
        (),
        None,
    ]:
        assert decided(metadata, local)[0] == "refused"
        assert decided(metadata, local) == reference(metadata, local)


def test_a_hit_is_refused_once_revoked_and_needs_the_scopes(
    setup: tuple[LocalVerification, str, str],
) -> None:
    local, cached, _ = setup
    metadata = (("authorization", f"Bearer {cached}"),)
    with pytest.raises(InsufficientScope):
        admit(Rule(scopes=("orders.write",)), metadata, local.lookup)
    jti = local.lookup(cached).token_id  # type: ignore[union-attr]
    local.revocations.add(jti, NOW + 600)
    try:
        with pytest.raises(TokenRevoked):
            admit(RULE, metadata, local.lookup)
    finally:
        local.revocations._revoked.pop(jti)


def test_a_miss_is_pending_with_the_parsed_token(
    setup: tuple[LocalVerification, str, str],
) -> None:
    local, _, fresh = setup
    step = admit(RULE, (("authorization", f"bearer   {fresh}"),), local.lookup)
    assert isinstance(step, Pending) and step.token == fresh
    assert step.finish(local.verify(fresh)).subject == "svc"


_FRAGMENTS = st.sampled_from(
    ["Bearer", "bearer", "BEARER", "Basic", " ", "  ", "\t", "=", "==", ".", "x", "é", ""]
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(_FRAGMENTS, max_size=3),
    after=st.lists(_FRAGMENTS, max_size=3),
    which=st.sampled_from(["cached", "fresh", "cut"]),
    extra=st.sampled_from([(), (("authorization", "Bearer x"),), (("authorization-bin", b"x"),)]),
)
def test_admit_agrees_with_the_full_parse_on_generated_metadata(
    setup: tuple[LocalVerification, str, str],
    before: list[str],
    after: list[str],
    which: str,
    extra: tuple[tuple[str, Any], ...],
) -> None:
    local, cached, fresh = setup
    token = {"cached": cached, "fresh": fresh, "cut": cached[:-3]}[which]
    metadata = (("authorization", "".join(before) + token + "".join(after)), *extra)
    assert decided(metadata, local) == reference(metadata, local)


def _malformed() -> AuthError:
    try:
        bearer_token((("authorization", "Bearer a b"),))
    except AuthError as err:
        return err
    raise AssertionError("not refused")
