"""The three POST endpoints: token (RFC 6749), revocation (RFC 7009), introspection (RFC 7662).

Translation only: every rule is the ``TokenAuthority``'s.

**Clients.** Registered clients authenticate with their secret, Basic or in the form.
They use the ``client_credentials`` grant, and may revoke the tokens issued to them and,
with the scope ``bearer-grpc:introspect``, introspect. At the revocation and
introspection endpoints a client proves itself by the rule that issues its tokens
(``TokenAuthority.issue`` with its client credentials, and the scope the endpoint needs);
the token signed on the way is dropped unseen. So a client that can no longer get tokens
can no longer revoke or introspect, and any limit on guessing secrets covers these
endpoints too. People log in through the public client the password grant's tokens
name (``bearer-grpc`` unless configured): the ``password`` and ``refresh_token`` grants
take no client secret, and a request that sends one is refused as ``unauthorized_client``,
since the tokens would name another client than the one that authenticated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

from aiohttp import web

from bearer_grpc.core.errors import (
    AudienceNotAllowed,
    AuthError,
    BearerGrpcError,
    Forbidden,
    InvalidGrant,
    InvalidRequest,
    ScopeNotAllowed,
)
from bearer_grpc.core.tokens import Principal
from bearer_grpc.service.authority import TokenAuthority
from bearer_grpc.service.grants import (
    ClientCredentialsGrant,
    Grant,
    Issued,
    PasswordGrant,
    RefreshGrant,
)
from bearer_grpc.service.http.client_auth import (
    ClientAuth,
    client_auth,
    client_certificate,
    require_client,
)
from bearer_grpc.service.http.errors import (
    OAuthError,
    Role,
    invalid_request,
    to_oauth,
    unauthorized_client,
)
from bearer_grpc.service.http.form import Form, parse_form
from bearer_grpc.service.metrics import GRANTS, ServiceMetrics
from bearer_grpc.service.settings import INTROSPECT_SCOPE


class Issue(Protocol):
    """Issues a token as IssueToken does (same sign-in limits and password pool)."""

    def __call__(
        self,
        grant: Grant,
        scopes: Sequence[str],
        audience: str,
        *,
        peer: str,
        certificate: bytes | None,
    ) -> Awaitable[Issued]:
        """Exchange ``grant`` for a token, for the caller at ``peer``."""
        ...


NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Headers of every answer of these endpoints (RFC 6749 §5.1)."""
BODY_TIMEOUT: Final = 10.0
"""Seconds a client gets to send a request body once its headers arrived."""


def json_answer(body: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON answer that no cache keeps."""
    return web.json_response(body, status=status, headers=NO_STORE)


async def read_request(request: web.Request, *, body_timeout: float) -> tuple[Form, ClientAuth]:
    """The form and the client of a POST request.

    Raises:
        OAuthError: ``invalid_request`` for a body too large, too slow or malformed, or
            several Authorization headers; ``invalid_client`` for a bad one.
    """
    try:
        async with asyncio.timeout(body_timeout):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise OAuthError("invalid_request", "request body too large", status=413) from None
    except TimeoutError:
        raise OAuthError("invalid_request", "request body too slow", status=408) from None
    form = parse_form(body, media_type=request.content_type, charset=request.charset)
    headers = request.headers.getall("Authorization", [])
    if len(headers) > 1:
        raise invalid_request("several Authorization headers")
    return form, client_auth(headers[0] if headers else None, form)


def _required(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise invalid_request(f"{name} is required")
    return value


def _scopes(form: Form) -> list[str]:
    return [scope for scope in form.get("scope", "").split(" ") if scope]


def _audience(form: Form) -> str:
    """``audience``, or RFC 8707's ``resource``; not both."""
    audience, resource = form.get("audience", ""), form.get("resource", "")
    if audience and resource:
        raise invalid_request("give audience or resource, not both")
    return audience or resource


class OAuthEndpoints:
    """Handlers of ``POST /token``, ``/revoke`` and ``/introspect``.

    Args:
        authority: The rules.
        issue: Issues tokens (see :data:`Issue`).
        metrics: Where requests are counted (interface ``http``).
        notify: Wakes revocation watchers after a revocation.
        body_timeout: Seconds a client gets to send its body.
    """

    def __init__(
        self,
        authority: TokenAuthority,
        issue: Issue,
        metrics: ServiceMetrics,
        notify: Callable[[], None],
        *,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self._authority = authority
        self._issue = issue
        self._metrics = metrics
        self._notify = notify
        self._body_timeout = body_timeout
        self._login_client = authority.settings.password_client_id

    async def _issued(
        self, request: web.Request, grant: Grant, scopes: Sequence[str], audience: str
    ) -> Issued:
        """Every grant of this face goes through here, to ``TokenAuthority.issue``.

        With the caller's address (sign-in limits and the password pool count by it) and
        its TLS client certificate (certificate-bound clients).
        """
        return await self._issue(
            grant,
            scopes,
            audience,
            peer=f"http:{request.remote or ''}",
            certificate=client_certificate(request),
        )

    async def _as_client(
        self,
        request: web.Request,
        readings: Sequence[tuple[str, str]],
        scopes: Sequence[str],
        audience: str,
    ) -> tuple[str, Issued]:
        """Issue with the client's credentials, trying each reading of a Basic header."""
        for index, (client_id, secret) in enumerate(readings):
            grant = ClientCredentialsGrant(client_id, secret)
            try:
                return client_id, await self._issued(request, grant, scopes, audience)
            except InvalidGrant:
                if index == len(readings) - 1:
                    raise
        raise InvalidGrant()  # no readings: not reached, require_client refuses first

    async def token(self, request: web.Request) -> web.Response:
        """RFC 6749 §4.3, §4.4, §6: exchange a grant for an access token."""
        kind = "none"
        role: Role = "client"
        try:
            form, auth = await read_request(request, body_timeout=self._body_timeout)
            grant_type = _required(form, "grant_type")
            kind = grant_type if grant_type in GRANTS else "none"
            scopes, audience = _scopes(form), _audience(form)
            if grant_type == "client_credentials":
                readings = require_client(auth)
                _, issued = await self._as_client(request, readings, scopes, audience)
            elif grant_type in ("password", "refresh_token"):
                role = "grant"
                self._check_login_client(auth)
                grant: Grant = (
                    PasswordGrant(_required(form, "username"), _required(form, "password"))
                    if grant_type == "password"
                    else RefreshGrant(_required(form, "refresh_token"))
                )
                issued = await self._issued(request, grant, scopes, audience)
            else:
                raise OAuthError("unsupported_grant_type", "grant_type not supported")
        except BearerGrpcError as err:
            self._metrics.issued(kind, err, "http")
            raise to_oauth(err, role=role) from err
        self._metrics.issued(kind, None, "http")
        answer: dict[str, Any] = {
            "access_token": issued.access.token,
            "token_type": "Bearer",
            "expires_in": issued.lifetime,
            "scope": " ".join(issued.scopes),
        }
        if issued.refresh_token:
            answer["refresh_token"] = issued.refresh_token
        return json_answer(answer)

    def _check_login_client(self, auth: ClientAuth) -> None:
        if auth.authenticated or auth.client_id not in ("", self._login_client):
            raise unauthorized_client(
                f"the password and refresh_token grants are for the public client "
                f"{self._login_client}, without a secret"
            )

    async def _authenticate(
        self, request: web.Request, auth: ClientAuth, scopes: Sequence[str]
    ) -> str:
        """The id of the client, once it proved it could get a token with ``scopes``."""
        readings = require_client(auth)
        try:
            client_id, _ = await self._as_client(request, readings, scopes, "")
        except (ScopeNotAllowed, AudienceNotAllowed) as err:
            raise unauthorized_client("this client may not use this endpoint", status=403) from err
        except BearerGrpcError as err:
            raise to_oauth(err, role="client") from err
        return client_id

    async def revoke(self, request: web.Request) -> web.Response:
        """RFC 7009: revoke a token issued to the authenticated client.

        The answer is 200 for an unknown, expired or malformed token too.
        """
        form, auth = await read_request(request, body_timeout=self._body_timeout)
        token = _required(form, "token")
        client_id = await self._authenticate(request, auth, ())
        try:
            await asyncio.to_thread(self._authority.revoke_token, token, client_id=client_id)
        except InvalidRequest:
            return json_answer({})  # RFC 7009 §2.2: nothing to revoke
        except Forbidden as err:
            raise unauthorized_client(err.message) from err
        except BearerGrpcError as err:
            raise to_oauth(err, role="client") from err
        self._metrics.revocation_accepted("token", "http")
        self._notify()
        return json_answer({})

    async def introspect(self, request: web.Request) -> web.Response:
        """RFC 7662: the state of a token, for clients with ``bearer-grpc:introspect``.

        Any token that is not valid, for whatever reason, is ``{"active": false}`` and
        nothing more (§2.2). An optional ``audience`` parameter restricts the answer to
        tokens for that audience.
        """
        form, auth = await read_request(request, body_timeout=self._body_timeout)
        token = _required(form, "token")
        audience = form.get("audience")
        await self._authenticate(request, auth, (INTROSPECT_SCOPE,))
        started = time.perf_counter()
        try:
            principal = self._authority.introspect(token, audience=audience)
        except AuthError as err:
            self._metrics.verification(err, time.perf_counter() - started, "http")
            return json_answer({"active": False})
        except BearerGrpcError as err:
            self._metrics.verification(err, time.perf_counter() - started, "http")
            raise to_oauth(err, role="client") from err
        self._metrics.verification(None, time.perf_counter() - started, "http")
        return json_answer(introspection(principal))


def introspection(principal: Principal) -> dict[str, Any]:
    """The RFC 7662 §2.2 answer for a valid token."""
    audience = list(principal.audience)
    return {
        "active": True,
        "scope": " ".join(sorted(principal.scopes)),
        "client_id": principal.client_id,
        "sub": principal.subject,
        "aud": audience[0] if len(audience) == 1 else audience,
        "iss": principal.issuer,
        "jti": principal.token_id,
        "iat": principal.issued_at,
        "exp": principal.expires_at,
        "token_type": "Bearer",
    }
