"""Reading a client certificate from a trusted proxy's header: Envoy
``x-forwarded-client-cert`` and RFC 9440 ``client-cert``, including hostile values."""

from __future__ import annotations

import base64
import hashlib
import random
import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearer_grpc.core.client_cert import (
    CLIENT_CERT,
    MAX_HEADER_CHARS,
    XFCC,
    client_cert_sha256,
    der_sha256,
    header_sha256,
    pem_sha256,
    xfcc_sha256,
)
from tests.harness import Identity, Pki, make_pki

PKI: Pki = make_pki("alice", "mallory")
ALICE: Identity = PKI.clients["alice"]
MALLORY: Identity = PKI.clients["mallory"]
DIGEST = hashlib.sha256(ALICE.der).digest()
HASH = DIGEST.hex()
CERT = quote(ALICE.cert_pem.decode(), safe="")
B64 = base64.b64encode(ALICE.der).decode()
URL_SAFE = base64.urlsafe_b64encode(bytes([0xFB, 0xFF, 0xBF]) * 8).decode()  # "-" and "_"
_ENCODED = re.compile(r"[A-Za-z0-9%+/_-]{40,}=*")


def _stable(value: object) -> str | None:
    """A test id without the certificate's encodings: the PKI is made afresh in every
    process, and pytest-xdist's workers must agree on the ids."""
    return _ENCODED.sub("~", value) if isinstance(value, str) else None


def test_pem_and_der_give_the_sha256_of_the_der() -> None:
    assert pem_sha256(ALICE.cert_pem) == DIGEST
    assert der_sha256(ALICE.der) == DIGEST
    assert pem_sha256(ALICE.cert_pem + MALLORY.cert_pem) is None  # one certificate only
    assert pem_sha256(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None
    assert der_sha256(ALICE.der + b"\x00") is None  # no trailing bytes
    assert der_sha256(b"") is None


# Envoy: x-forwarded-client-cert


@pytest.mark.parametrize(
    "value",
    [
        f"Hash={HASH}",
        f"Hash={HASH.upper()}",
        f"Cert={CERT}",
        f'Cert="{CERT}"',
        f"Hash={HASH};Cert={CERT}",
        f'By=spiffe://bound.test/proxy;Hash={HASH};Subject="CN=alice,O=a;b=c";URI=spiffe://x',
        f'By=spiffe://bound.test/proxy;Hash={HASH};Subject="CN=\\"quoted\\"";DNS=alice.test',
        f"hash={HASH}",  # keys compare case-insensitively
        f"By=spiffe://p; Hash={HASH}",
    ],
    ids=_stable,
)
def test_xfcc_names_the_certificate(value: str) -> None:
    assert xfcc_sha256(value) == DIGEST


@pytest.mark.parametrize(
    "value",
    [
        "",
        "By=spiffe://bound.test/proxy",  # neither Hash nor Cert
        f"Hash={HASH[:-1]}",
        f"Hash={HASH}0",
        f"Hash={'g' * 64}",
        f"Hash= {HASH}",
        f'Hash="{HASH}',  # unterminated quote
        f'Hash="{HASH}"x',  # something after the closing quote
        f'Hash=a"{HASH}"',  # a quote inside a value
        f'"Hash"={HASH}',  # a quoted key
        f"Hash={HASH};Hash={HASH}",  # a key twice
        f"Hash={HASH};HASH={HASH}",
        f"Hash={HASH};Cert",  # a pair without "="
        f"={HASH}",
        f"Hash={HASH},Hash={HASH}",  # two elements: which one is the client's?
        f"Hash={hashlib.sha256(MALLORY.der).hexdigest()},Hash={HASH}",
        f"Hash={HASH},",
        f"Hash={hashlib.sha256(MALLORY.der).hexdigest()};Cert={CERT}",  # they disagree
        "Cert=" + quote((ALICE.cert_pem + MALLORY.cert_pem).decode(), safe=""),
        "Cert=" + quote(ALICE.cert_pem.decode()[:-40], safe=""),  # cut short
        "Cert=%ZZ%",
        f"Hash={HASH};By=" + "x" * MAX_HEADER_CHARS,  # oversized
    ],
    ids=_stable,
)
def test_xfcc_unusable_values_name_no_certificate(value: str) -> None:
    assert xfcc_sha256(value) is None


# RFC 9440: client-cert


@pytest.mark.parametrize("value", [f":{B64}:", f":{B64.rstrip('=')}:", f"  :{B64}: "], ids=_stable)
def test_client_cert_names_the_certificate(value: str) -> None:
    assert client_cert_sha256(value) == DIGEST


@pytest.mark.parametrize(
    "value",
    [
        "",
        "::",
        B64,  # not a byte sequence
        f":{B64}",
        f":{B64}:;a=1",  # parameters
        f":{B64}:, :{B64}:",  # a list
        ":" + URL_SAFE + ":",  # base64url is not base64
        f":{B64.rstrip('=')}===:",
        ":AAAAA:",  # 4n+1 characters decode to nothing whole
        ":AAAA=:",  # padding where none is due
        f":{base64.b64encode(ALICE.der + b'x').decode()}:",  # trailing bytes
        f":{base64.b64encode(b'not a certificate').decode()}:",
        f":{base64.b64encode(ALICE.cert_pem).decode()}:",  # PEM, not DER
        ":" + "A" * (MAX_HEADER_CHARS + 4) + ":",
    ],
    ids=_stable,
)
def test_client_cert_unusable_values_name_no_certificate(value: str) -> None:
    assert client_cert_sha256(value) is None


@pytest.mark.parametrize(
    ("header", "value"), [(XFCC, f"Hash={HASH}"), (CLIENT_CERT, f":{B64}:")], ids=_stable
)
def test_exactly_one_header_entry_counts(header: str, value: str) -> None:
    assert header_sha256(header, [value]) == DIGEST
    assert header_sha256(header, []) is None
    assert header_sha256(header, [value, value]) is None


# Properties: nothing a proxy (or a client reaching past it) sends raises.

_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


@given(_header_text)
def test_any_xfcc_value_parses_to_a_digest_or_none(value: str) -> None:
    digest = xfcc_sha256(value)
    assert digest is None or len(digest) == 32


@given(_header_text)
def test_any_client_cert_value_parses_to_none(value: str) -> None:
    assert client_cert_sha256(value) is None


_plain_value = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='",;='), max_size=20
)
_quoted_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


def _quote_xfcc(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    st.dictionaries(st.sampled_from(["By", "Subject", "URI", "DNS"]), _plain_value),
    st.dictionaries(st.sampled_from(["Subject", "DNS"]), _quoted_value),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_the_hash_is_found_among_any_other_pairs(
    plain: dict[str, str], quoted: dict[str, str], with_cert: bool, order: random.Random
) -> None:
    pairs = {**plain, **{key: _quote_xfcc(text) for key, text in quoted.items()}}
    pairs["Hash"] = HASH
    if with_cert:
        pairs["Cert"] = _quote_xfcc(CERT)
    items = [f"{key}={value}" for key, value in pairs.items()]
    order.shuffle(items)
    assert xfcc_sha256(";".join(items)) == DIGEST
