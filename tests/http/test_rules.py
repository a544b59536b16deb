"""The HTTP face's pure rules, called directly: form bodies, Basic credentials in both
encodings, client authentication, the issuer URL, the discovery document, the JWKS
answer and the error table."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearer_grpc.core.errors import (
    AudienceNotAllowed,
    Forbidden,
    InvalidGrant,
    InvalidRequest,
    LoginThrottled,
    Overloaded,
    ScopeNotAllowed,
    TokenInvalid,
    Unavailable,
)
from bearer_grpc.service.http.basic import decode_basic
from bearer_grpc.service.http.client_auth import client_auth
from bearer_grpc.service.http.discovery import Endpoints, check_issuer, discovery_document
from bearer_grpc.service.http.errors import OAuthError, to_oauth
from bearer_grpc.service.http.form import FORM_TYPE, parse_form
from bearer_grpc.service.http.jwks import JwksAnswer

# Characters a client id or secret may hold (no control characters; no ":" in an id).
SECRET_CHARS = st.characters(max_codepoint=0x2FF, exclude_categories=("Cc", "Cs"))
ID_CHARS = st.characters(
    max_codepoint=0x2FF, exclude_categories=("Cc", "Cs"), exclude_characters=":"
)


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_form(body, media_type=FORM_TYPE, charset=None))


def test_form_reads_one_value_per_parameter_and_drops_empty_ones() -> None:
    assert _form(b"grant_type=client_credentials&scope=a+b&audience=") == {
        "grant_type": "client_credentials",
        "scope": "a b",
    }
    assert _form(b"") == {}


@pytest.mark.parametrize(
    "body",
    [b"a=1&a=2", b"a", b"a=%zz", b"a=%ff", b"=1", b"a=%0d%0a", b"a=1&&b=2", "é=1".encode()],
)
def test_form_refuses(body: bytes) -> None:
    with pytest.raises(OAuthError) as caught:
        _form(body)
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)


def test_form_refuses_other_media_types_and_charsets() -> None:
    with pytest.raises(OAuthError):
        parse_form(b"a=1", media_type="application/json", charset=None)
    with pytest.raises(OAuthError):
        parse_form(b"a=1", media_type=FORM_TYPE, charset="iso-8859-1")
    assert parse_form(b"a=1", media_type=FORM_TYPE, charset="UTF-8") == {"a": "1"}


def test_form_messages_never_echo_unknown_names() -> None:
    with pytest.raises(OAuthError) as caught:
        _form(b"s3cret-name=1&s3cret-name=2")
    assert "s3cret" not in caught.value.message


@given(st.dictionaries(st.sampled_from(["grant_type", "scope", "x"]), st.text(SECRET_CHARS)))
def test_form_round_trip(values: dict[str, str]) -> None:
    body = urllib.parse.urlencode(values).encode()
    assert _form(body) == {k: v for k, v in values.items() if v}


@given(st.text(ID_CHARS, min_size=1, max_size=40), st.text(SECRET_CHARS, min_size=1, max_size=60))
def test_basic_accepts_both_encodings(client_id: str, secret: str) -> None:
    encoded = _basic(urllib.parse.quote_plus(client_id), urllib.parse.quote_plus(secret))
    assert decode_basic(encoded)[0] == (client_id, secret)  # RFC 6749 §2.3.1 first
    assert (client_id, secret) in decode_basic(_basic(client_id, secret))  # raw too


def test_basic_readings_differ_only_when_the_encoding_matters() -> None:
    assert decode_basic(_basic("svc-a", "abc_DEF-123")) == [("svc-a", "abc_DEF-123")]
    assert decode_basic(_basic("svc+a", "s3cr+t%2F")) == [
        ("svc a", "s3cr t/"),
        ("svc+a", "s3cr+t%2F"),
    ]
    assert decode_basic("basic " + base64.b64encode(b"a:b").decode()) == [("a", "b")]


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic YQ==",  # "a": no colon
        "Basic Og==",  # ":"
        "Basic !!!",
        "Basic " + base64.b64encode(b"a:\xff").decode(),
        "Basic " + base64.b64encode(b"a:b\r\n").decode(),
        "Digest abc",
        "Basic " + "QUFB" * 1000,
    ],
)
def test_basic_refuses(header: str) -> None:
    with pytest.raises(OAuthError) as caught:
        decode_basic(header)
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_client_auth_methods() -> None:
    assert client_auth(_basic("a", "b"), {}).method == "client_secret_basic"
    posted = client_auth(None, {"client_id": "a", "client_secret": "b"})
    assert (posted.method, posted.readings) == ("client_secret_post", (("a", "b"),))
    public = client_auth(None, {"client_id": "bearer-grpc"})
    assert (public.method, public.client_id, public.authenticated) == ("none", "bearer-grpc", False)
    assert "b" not in repr(posted)
    for authorization, form in (
        (_basic("a", "b"), {"client_secret": "b"}),  # both methods
        (_basic("a", "b"), {"client_id": "other"}),  # two clients
        (None, {"client_secret": "b"}),  # a secret of nobody
    ):
        with pytest.raises(OAuthError) as caught:
            client_auth(authorization, form)
        assert caught.value.error == "invalid_request"


@pytest.mark.parametrize(
    "issuer",
    [
        "https://tokens.example",
        "https://tokens.example:8443/tenant",
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:9",
    ],
)
def test_issuer_urls_accepted(issuer: str) -> None:
    assert check_issuer(issuer) == issuer


@pytest.mark.parametrize(
    "issuer",
    [
        "bearer-grpc",
        "http://tokens.example",
        "https://tokens.example/",
        "ftp://x",
        "https://tokens.example?x=1",
        "https://tokens.example#f",
        "https://u@tokens.example",
        "https://tokens.example:99999",
        "https://",
    ],
)
def test_issuer_urls_refused(issuer: str) -> None:
    with pytest.raises(ValueError, match="--issuer"):
        check_issuer(issuer)


def test_discovery_paths_with_and_without_an_issuer_path() -> None:
    assert Endpoints("https://t.example").discovery_paths == (
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    )
    tenant = Endpoints("https://t.example/tenant")
    assert tenant.discovery_paths == (
        "/.well-known/oauth-authorization-server/tenant",
        "/tenant/.well-known/openid-configuration",
    )
    assert (tenant.path("token"), tenant.url("jwks")) == (
        "/tenant/token",
        "https://t.example/tenant/jwks",
    )


def test_discovery_document_has_no_empty_lists_and_lists_the_algorithms() -> None:
    document = discovery_document(Endpoints("https://t.example"), ["EdDSA", "ES256", "ES256"])
    assert document["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA"]
    assert all(value != [] for value in document.values())
    assert document["token_endpoint_auth_methods_supported"][-1] == "none"


def test_jwks_answer() -> None:
    answer = JwksAnswer.of('{"keys":[]}', publish_delay=1800)
    assert answer.cache_control == "public, max-age=900"
    assert answer.not_modified(answer.etag) and answer.not_modified("*")
    assert not answer.not_modified(None) and not answer.not_modified('"x"')
    assert JwksAnswer.of("{}", publish_delay=0).cache_control == "public, max-age=0"
    assert JwksAnswer.of("{}", publish_delay=86400).cache_control == "public, max-age=3600"


def test_error_table() -> None:
    def mapped(error: Exception, role: str = "client") -> tuple[str, int]:
        oauth = to_oauth(error, role=role)  # type: ignore[arg-type]
        return oauth.error, oauth.status

    assert mapped(InvalidGrant()) == ("invalid_client", 401)
    assert mapped(InvalidGrant(), "grant") == ("invalid_grant", 400)
    assert mapped(ScopeNotAllowed()) == ("invalid_scope", 400)
    assert mapped(AudienceNotAllowed()) == ("invalid_target", 400)
    assert mapped(Forbidden()) == ("unauthorized_client", 400)
    assert mapped(InvalidRequest("x")) == ("invalid_request", 400)
    # Overloaded (a full password pool) and LoginThrottled: try again later, at 429
    assert mapped(Overloaded()) == ("temporarily_unavailable", 429)
    assert mapped(LoginThrottled(retry_after=8)) == ("temporarily_unavailable", 429)
    assert mapped(Unavailable()) == ("temporarily_unavailable", 503)
    assert mapped(TokenInvalid()) == ("server_error", 500)
    assert to_oauth(InvalidGrant(), role="client").headers["WWW-Authenticate"].startswith("Basic")
    assert to_oauth(Overloaded(), role="grant").headers == {"Retry-After": "1"}
    # the throttle's own delay, in whole seconds rounded up (never 0)
    assert to_oauth(LoginThrottled(retry_after=7.2), role="grant").headers == {"Retry-After": "8"}
    assert to_oauth(LoginThrottled(retry_after=0.1), role="grant").headers == {"Retry-After": "1"}
    assert to_oauth(Unavailable(), role="grant").headers == {"Retry-After": "1"}
