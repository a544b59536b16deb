"""Discovery (RFC 8414 and OpenID Connect paths, one document) and the JWKS: status,
content type, signing keys with kid/alg/use, ETag and 304, Cache-Control, no redirect."""

from __future__ import annotations

import re

from tests.harness import Http


def test_discovery_is_the_same_document_at_both_paths(http: Http) -> None:
    oauth = http.get("/.well-known/oauth-authorization-server")
    oidc = http.get("/.well-known/openid-configuration")
    assert oauth.status_code == oidc.status_code == 200
    assert oauth.headers["content-type"].startswith("application/json")
    assert oauth.json() == oidc.json()
    document = oauth.json()
    assert document["issuer"] == http.issuer
    for name, path in (
        ("jwks_uri", "/jwks"),
        ("token_endpoint", "/token"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ):
        assert document[name] == http.url(path)
    assert document["grant_types_supported"] == ["client_credentials", "password", "refresh_token"]
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "bearer-grpc:introspect" in document["scopes_supported"]
    assert "response_types_supported" not in document  # no authorization endpoint


def test_jwks_serves_signing_keys_with_kid_alg_use(http: Http) -> None:
    response = http.get("/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["use"] == "sig" and key["alg"] == "ES256" and key["kid"]
        assert "d" not in key  # public only
    assert response.json() == {"keys": keys}


def test_jwks_etag_and_if_none_match(http: Http) -> None:
    first = http.get("/jwks")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    same = http.get("/jwks", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == etag
    weak = http.get("/jwks", headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    other = http.get("/jwks", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


def test_jwks_max_age_is_at_most_half_the_publish_window(http: Http) -> None:
    delay = http.service.authority.settings.key_publish_delay
    value = http.get("/jwks").headers["cache-control"]
    max_age = int(re.fullmatch(r"public, max-age=(\d+)", value).group(1))  # type: ignore[union-attr]
    assert 0 < max_age <= delay // 2


def test_no_redirects(http: Http) -> None:
    for path in ("/jwks", "/.well-known/openid-configuration"):
        assert http.get(path, follow_redirects=False).status_code == 200
    assert http.get("/jwks/").status_code == 404


def test_jwks_follows_a_staged_key(http: Http) -> None:
    from bearer_grpc.service.admin import Admin

    before = http.get("/jwks")
    staged = Admin(http.service.store).rotate_key(algorithm="EdDSA", delay=3600, kek=None)
    http.service.authority.sync()
    after = http.get("/jwks", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert staged.kid in {key["kid"] for key in after.json()["keys"]}
    algs = http.get("/.well-known/oauth-authorization-server").json()
    assert algs["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA"]
