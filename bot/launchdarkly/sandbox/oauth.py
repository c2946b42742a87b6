"""LaunchDarkly's OAuth 2.0 authorization code flow, as the sandbox speaks it.

- ``POST /api/v2/oauth/clients`` (a writer's token stands for an admin's): ``name``,
  ``redirectUri`` (one absolute https URI without a query string; the sandbox also takes http on
  loopback, where the tests and the console serve the bot), ``description`` → ``_clientId`` and the
  one-time ``_clientSecret``.
- ``GET /trust/oauth/authorize`` (``client_id``, ``redirect_uri``, ``response_type=code``,
  ``scope``, ``state``): a page where you pick the member to sign in as (alice, bob, carol); the
  pick (``login_as=<email>``) redirects to ``redirect_uri?code=…&state=…``. A code is single use
  and lives 10 minutes.
- ``POST /trust/oauth/token`` (form; ``client_secret_post``: the client's id and secret in the
  body): ``grant_type=authorization_code`` (``code``, ``redirect_uri``) or ``refresh_token``
  (``refresh_token``; the refresh token rotates) → ``access_token`` (``token_type: Bearer``,
  ``expires_in``), ``refresh_token``, ``scope``. Errors as RFC 6749 says: 400 ``invalid_grant`` /
  ``invalid_request`` / ``unsupported_grant_type``, 401 ``invalid_client``.
- An access token is accepted as ``Authorization: Bearer <token>`` and acts as its member, never
  beyond the member's role (a reader's token cannot write). :meth:`SandboxOAuth.revoke` drops a
  member's tokens, as an admin revoking the app would.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CODE_TTL_MS = 10 * 60 * 1000
ACCESS_TTL_SECONDS = 3600
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class OAuthClient:
    client_id: str
    secret: str
    redirect_uri: str
    name: str
    description: str
    created_ms: int


@dataclass
class _Code:
    client_id: str
    member_id: str
    redirect_uri: str
    scope: str
    expires_ms: int


@dataclass
class _Grant:
    client_id: str
    member_id: str
    scope: str
    expires_ms: int | None = None  # an access token's; a refresh token does not expire here


@dataclass
class SandboxOAuth:
    """The registered clients and the codes and tokens handed out."""

    clients: dict[str, OAuthClient] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    access: dict[str, _Grant] = field(default_factory=dict)
    refresh: dict[str, _Grant] = field(default_factory=dict)
    access_ttl_seconds: int = ACCESS_TTL_SECONDS
    #: Refresh grants refused (a refresh token LaunchDarkly no longer honours).
    refuse_refresh: bool = False

    def register(self, name: str, redirect_uri: str, description: str, now_ms: int) -> OAuthClient:
        """Register a client (what ``POST /api/v2/oauth/clients`` does)."""
        client = OAuthClient(
            secrets.token_hex(16), secrets.token_urlsafe(32), redirect_uri, name, description, now_ms
        )
        self.clients[client.client_id] = client
        return client

    def issue(self, client_id: str, member_id: str, scope: str, now_ms: int) -> dict[str, Any]:
        """A new access token and refresh token for a member, as the token endpoint answers them."""
        access, refresh = "ldo-" + secrets.token_urlsafe(24), "ldr-" + secrets.token_urlsafe(24)
        self.access[access] = _Grant(client_id, member_id, scope, now_ms + self.access_ttl_seconds * 1000)
        self.refresh[refresh] = _Grant(client_id, member_id, scope)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl_seconds,
            "refresh_token": refresh,
            "scope": scope,
        }

    def member_of(self, access_token: str, now_ms: int) -> _Grant | None:
        """The grant behind a live access token, or None (unknown, revoked or expired)."""
        grant = self.access.get(access_token)
        if grant is None or (grant.expires_ms is not None and grant.expires_ms <= now_ms):
            return None
        return grant

    def revoke(self, member_id: str) -> None:
        """Drop every token of a member (the app's access revoked in LaunchDarkly)."""
        for tokens in (self.access, self.refresh):
            for token in [t for t, grant in tokens.items() if grant.member_id == member_id]:
                del tokens[token]

    def expire_access(self) -> None:
        """Make every access token expired now (its refresh token still works)."""
        for grant in self.access.values():
            grant.expires_ms = 0


def _redirect_uri_ok(uri: object) -> bool:
    if not isinstance(uri, str) or not uri:
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if parts.query or parts.fragment or not parts.netloc:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK)


class _State(Protocol):
    """What the OAuth routes use of ``SandboxState`` (read only)."""

    @property
    def oauth(self) -> SandboxOAuth: ...

    @property
    def accounts(self) -> Sequence[Any]: ...

    @property
    def account_id(self) -> str: ...

    @property
    def clock(self) -> Callable[[], int]: ...


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> Response:
        return JSONResponse(
            {"error": self.error, "error_description": self.description}, status_code=self.status
        )


class OAuthRoutes:
    """The client registration route and the two ``/trust/oauth`` endpoints."""

    def __init__(self, state: _State, account: Any) -> None:
        self.state = state
        self.account = account  # SandboxRoutes.account: the route's token check

    async def create_client(self, request: Request) -> Response:
        self.account(request, write=True)
        try:
            body = await request.json()
        except ValueError:
            return _invalid("The request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
            return _invalid("name is required")
        if not _redirect_uri_ok(body.get("redirectUri")):
            return _invalid("redirectUri must be one absolute https URL without a query string")
        client = self.state.oauth.register(
            body["name"], body["redirectUri"], str(body.get("description") or ""), self.state.clock()
        )
        return JSONResponse(
            {
                "_links": {
                    "self": {"href": f"/api/v2/oauth/clients/{client.client_id}", "type": "application/json"}
                },
                "name": client.name,
                "description": client.description,
                "_accountId": self.state.account_id,
                "_clientId": client.client_id,
                "_clientSecret": client.secret,
                "redirectUri": client.redirect_uri,
                "_creationDate": client.created_ms,
            },
            status_code=201,
        )

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        client = self.state.oauth.clients.get(query.get("client_id", ""))
        if client is None or query.get("redirect_uri") != client.redirect_uri:
            # Never redirect to a URI the client did not register: say it on the page.
            return HTMLResponse("<p>Unknown client or redirect URI.</p>", status_code=400)
        if query.get("response_type") != "code":
            return _back(client.redirect_uri, error="unsupported_response_type", state=query.get("state"))
        scope = query.get("scope") or "reader"
        login_as = query.get("login_as")
        if login_as is None:
            return HTMLResponse(self._page(dict(query)))
        account = next((a for a in self.state.accounts if a.member.get("email") == login_as), None)
        if account is None:
            return HTMLResponse("<p>No such member.</p>", status_code=400)
        code = secrets.token_urlsafe(24)
        self.state.oauth.codes[code] = _Code(
            client.client_id, account.member_id, client.redirect_uri, scope, self.state.clock() + CODE_TTL_MS
        )
        return _back(client.redirect_uri, code=code, state=query.get("state"))

    def _page(self, query: dict[str, str]) -> str:
        choices = "".join(
            f'<li><a href="/trust/oauth/authorize?{html.escape(urlencode({**query, "login_as": email}))}">'
            f"Sign in as {html.escape(email)}</a></li>"
            for email in (str(a.member.get("email")) for a in self.state.accounts)
        )
        return (
            "<!doctype html><title>Authorize</title><h1>LaunchDarkly sandbox</h1>"
            "<p>An app asks to act in LaunchDarkly as you. Sign in as:</p>"
            f"<ul>{choices}</ul>"
        )

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            client = self.state.oauth.clients.get(form.get("client_id", ""))
            if client is None or not secrets.compare_digest(form.get("client_secret", ""), client.secret):
                raise _OAuthError(401, "invalid_client", "Client authentication failed")
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = self._code_grant(client, form)
            elif grant_type == "refresh_token":
                grant = self._refresh_grant(client, form)
            else:
                raise _OAuthError(
                    400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
                )
        except _OAuthError as exc:
            return exc.response()
        return JSONResponse(
            self.state.oauth.issue(client.client_id, grant.member_id, grant.scope, self.state.clock()),
            headers={"Cache-Control": "no-store"},
        )

    def _code_grant(self, client: OAuthClient, form: dict[str, str]) -> _Grant:
        code = self.state.oauth.codes.pop(form.get("code", ""), None)  # single use, valid or not
        if code is None or code.client_id != client.client_id or code.expires_ms <= self.state.clock():
            raise _OAuthError(400, "invalid_grant", "The authorization code is invalid or expired")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _OAuthError(400, "invalid_grant", "redirect_uri does not match the authorization request")
        return _Grant(client.client_id, code.member_id, code.scope)

    def _refresh_grant(self, client: OAuthClient, form: dict[str, str]) -> _Grant:
        old = self.state.oauth.refresh.pop(form.get("refresh_token", ""), None)
        if self.state.oauth.refuse_refresh or old is None or old.client_id != client.client_id:
            raise _OAuthError(400, "invalid_grant", "The refresh token is invalid or revoked")
        return old


def _invalid(message: str) -> Response:
    """LaunchDarkly's 400 body (``code``, ``message``)."""
    return JSONResponse({"code": "invalid_request", "message": message}, status_code=400)


def _back(redirect_uri: str, **params: str | None) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)


def routes(state: _State, account: Any) -> list[Route]:
    """The OAuth routes over ``state`` (``account``: the sandbox's token check)."""
    r = OAuthRoutes(state, account)
    return [
        Route("/api/v2/oauth/clients", r.create_client, methods=["POST"]),
        Route("/trust/oauth/authorize", r.authorize, methods=["GET"]),
        Route("/trust/oauth/token", r.token, methods=["POST"]),
    ]
