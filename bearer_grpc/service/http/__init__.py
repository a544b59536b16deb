"""The TokenService over HTTP: OAuth 2.0 for every language, library and proxy.

``bearer-grpc serve --http-listen HOST:PORT`` serves, next to the gRPC TokenService and
in the same event loop, with the same :class:`~bearer_grpc.service.authority.TokenAuthority`:

- discovery (RFC 8414 and OpenID Connect Discovery), :mod:`.discovery`;
- the JWKS, :mod:`.jwks`;
- the token endpoint (RFC 6749: client credentials, password, refresh token), revocation
  (RFC 7009) and introspection (RFC 7662), :mod:`.endpoints`.

Pure rules of the face live in modules without I/O: form bodies (:mod:`.form`), Basic
credentials in both encodings (:mod:`.basic`), client authentication
(:mod:`.client_auth`), error answers (:mod:`.errors`). :mod:`.app` puts them on aiohttp.
"""

from bearer_grpc.service.http.app import HttpFace, HttpLimits, server_ssl_context

__all__ = ["HttpFace", "HttpLimits", "server_ssl_context"]
