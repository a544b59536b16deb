"""Hostile tokens: every case of the catalogue, refused on every path.

One test per (algorithm, case, path): the TokenService's VerifyToken (sync and aio
clients: OK with ``active=false``) and a protected server (sync and aio interceptors:
UNAUTHENTICATED, handler never run). The controls prove each path accepts the genuine
token, so a refusal can only come from what the case changed. Advisories get named
regression tests that drive the same cases.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from bearer_grpc.v1 import token_service_pb2 as pb
from tests.harness import LoopThread
from tests.security._catalogue import CASES, Case, assert_unique_names, case_id, expand
from tests.security._forge import b64url, unb64url
from tests.security._paths import PATHS, assert_accepted, assert_refused
from tests.security.conftest import Deployments

EXPANDED = list(expand())


@pytest.fixture(scope="session")
def hostile(deployments: Deployments) -> Callable[[str, Case], str]:
    """The token of a case for a deployment, built once per session."""
    built: dict[tuple[str, str], str] = {}

    def get(alg: str, entry: Case) -> str:
        if (alg, entry.name) not in built:
            built[(alg, entry.name)] = entry.build(deployments[alg].kit)
        return built[(alg, entry.name)]

    return get


def by_name(name: str) -> Case:
    """The catalogue case called ``name``."""
    return next(entry for entry in CASES if entry.name == name)


def test_case_names_are_unique() -> None:
    assert_unique_names()


@pytest.mark.parametrize("where", PATHS)
@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_control_genuine_token_is_accepted(
    deployments: Deployments, security_loop: LoopThread, alg: str, where: str
) -> None:
    """Each path accepts a genuine token built like the hostile ones (the control)."""
    deployment = deployments[alg]
    assert_accepted(deployment, security_loop, deployment.kit.legit(), where, "svc-checkout")


@pytest.mark.parametrize("where", PATHS)
def test_control_issued_token_is_accepted(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """A token from IssueToken passes too: the protected servers trust the service."""
    deployment = deployments["ES256"]
    name = f"security-control-{where}"
    client = deployment.service.add_client(name, scopes=("echo.use",), audiences=("echo",))
    issued = deployment.service.issue(client, audience="echo")
    assert_accepted(deployment, security_loop, issued.access_token, where, name)


@pytest.mark.parametrize("where", PATHS)
@pytest.mark.parametrize(
    ("alg", "entry"), EXPANDED, ids=[case_id(alg, entry) for alg, entry in EXPANDED]
)
def test_hostile_token_is_refused(
    deployments: Deployments,
    security_loop: LoopThread,
    hostile: Callable[[str, Case], str],
    alg: str,
    entry: Case,
    where: str,
) -> None:
    assert_refused(deployments[alg], security_loop, hostile(alg, entry), where)


OTHER_AUDIENCE = frozenset(
    f"claims.aud_{name}" for name in ("other", "prefix", "superstring", "case", "list_without_ours")
)
"""Genuine tokens of this issuer for another audience: revoking one by value is allowed
(possession suffices), so they are no hostile input to RevokeToken."""
GENUINELY_SIGNED = ("claims.", "duplicate.", "json.", "typ.", "encoding.")
"""Families whose tokens carry our key's signature over the hostile content (plus every
``*_validly_signed`` case): the only ones that get past the signature into the claims
and the store, so the ones RevokeToken must be tried with."""
REVOCABLE = [
    (alg, entry)
    for alg, entry in EXPANDED
    if alg == "ES256"
    and entry.name not in OTHER_AUDIENCE
    and (entry.name.startswith(GENUINELY_SIGNED) or entry.name.endswith("validly_signed"))
]


@pytest.mark.parametrize(
    ("alg", "entry"), REVOCABLE, ids=[case_id(alg, entry) for alg, entry in REVOCABLE]
)
def test_hostile_token_revokes_nothing(
    deployments: Deployments, hostile: Callable[[str, Case], str], alg: str, entry: Case
) -> None:
    """RevokeToken by value: a hostile token is an unknown token (INVALID_ARGUMENT), or
    too big for a request; never INTERNAL (a signed ``exp`` of 2**64 overflowed the
    store's integer column before NumericDates were bounded) and never a revocation."""
    deployment = deployments[alg]
    request = pb.RevokeTokenRequest(token=hostile(alg, entry))
    try:
        response = deployment.stub.RevokeToken(request, timeout=10)
    except grpc.RpcError as err:
        assert err.code() in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), err
    else:  # an expired token needs no revocation: OK, nothing written
        assert response.sequence == 0


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def test_gray_ecdsa_high_s_twin_is_the_same_token_for_revocation(
    deployments: Deployments,
) -> None:
    """S7: (r, n - s) is a second valid ES256 signature over the same bytes, so a token
    string is malleable. Whatever the verifier says about the twin, revoking the
    original (by its jti) must refuse the twin too: nothing is keyed on the raw string."""
    deployment = deployments["ES256"]
    kit = deployment.kit
    original = kit.legit(jti="jti-gray-high-s")
    head, body, sig = original.split(".")
    raw = unb64url(sig)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin = f"{head}.{body}.{b64url(r + (P256_N - s).to_bytes(32, 'big'))}"
    assert twin != original
    request = pb.VerifyTokenRequest(token=twin, audience="echo")
    assert deployment.stub.VerifyToken(request, timeout=10).active  # cached as its own string
    deployment.stub.RevokeToken(pb.RevokeTokenRequest(token=original), timeout=10)
    answer = deployment.stub.VerifyToken(request, timeout=10)
    assert (answer.active, answer.reason) == (False, "TOKEN_REVOKED")


# --- named regressions: advisories and CVEs ---------------------------------------------


_BUILT: dict[tuple[str, str], str] = {}


def _refused(deployments: Deployments, loop: LoopThread, alg: str, name: str, where: str) -> None:
    if (alg, name) not in _BUILT:
        _BUILT[(alg, name)] = by_name(name).build(deployments[alg].kit)
    assert_refused(deployments[alg], loop, _BUILT[(alg, name)], where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2022_29217_hmac_with_public_key(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """PyJWT < 2.4: HS256 keyed with an ``ssh-ed25519`` public key verified."""
    _refused(deployments, security_loop, "EdDSA", "key_confusion.hs256_openssh", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2017_11424_hmac_with_pkcs1_public_key(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """PyJWT < 1.5.1: HS256 keyed with a PKCS#1 RSA public key PEM verified."""
    _refused(deployments, security_loop, "RS256", "key_confusion.hs256_compressed_or_pkcs1", where)


@pytest.mark.parametrize("where", PATHS)
def test_ghsa_xgmm_8j9v_c9wx_hmac_with_jwk_json(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """PyJWT < 2.13: HS256 keyed with the public JWK's JSON text verified."""
    _refused(deployments, security_loop, "ES256", "key_confusion.hs256_jwk_json", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2022_21449_psychic_signature(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """Java 15-18 accepted ECDSA r = s = 0 for any message and key."""
    _refused(deployments, security_loop, "ES256", "ecdsa.psychic_r0_s0_raw", where)
    _refused(deployments, security_loop, "ES256", "ecdsa.psychic_r0_s0_der", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2018_0114_embedded_jwk(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """node-jose < 0.11: a key carried in the token's ``jwk`` header was trusted."""
    _refused(deployments, security_loop, "ES256", "attacker.embedded_jwk_own_kid", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2022_39227_json_polyglot(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """python-jwt < 3.3.4: a JSON/compact polyglot swapped in forged claims."""
    _refused(deployments, security_loop, "ES256", "serialization.polyglot_cve_2022_39227", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2026_32597_unknown_crit_extension(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """PyJWT < 2.12: a ``crit`` extension the verifier does not know was ignored."""
    _refused(deployments, security_loop, "ES256", "crit.unknown_extension_validly_signed", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2024_53861_partial_iss_match(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """PyJWT 2.10.0 accepted an ``iss`` that was a substring of the expected one."""
    _refused(deployments, security_loop, "ES256", "claims.iss_prefix", where)


@pytest.mark.parametrize("where", PATHS)
def test_cve_2025_27144_many_segments(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """go-jose: splitting a token of a million dots exhausted memory."""
    _refused(deployments, security_loop, "ES256", "oversized.many_dots_1mb", where)


@pytest.mark.parametrize("where", PATHS)
def test_mclean_2015_alg_none(
    deployments: Deployments, security_loop: LoopThread, where: str
) -> None:
    """The original JWT bypass: ``alg: none`` with the signature stripped."""
    for spelling in ("none", "None", "NONE", "nOnE"):
        _refused(
            deployments, security_loop, "ES256", f"alg_none.{spelling}_without_signature", where
        )
