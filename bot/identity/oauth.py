"""Connect with LaunchDarkly: the OAuth 2.0 authorization code flow, as LaunchDarkly offers it.

The protocol is Authlib's (``AsyncOAuth2Client``, an httpx client): the authorization URL at
``{LD_BASE_URL}/trust/oauth/authorize`` (``response_type=code``, ``scope=writer``, ``state``), the
code exchanged and the tokens refreshed at ``{LD_BASE_URL}/trust/oauth/token`` with the client's
id and secret in the POST body (``client_secret_post``). What flagops adds:

- **state**: 32 random bytes, single use, bound to the Slack user and team, valid 10 minutes;
  only its SHA-256 is stored (``oauth_states``), with where to tell the person and what to resume
  (a click that needed the connection). Taking it is a compare-and-set, so a replayed callback
  finds it used.
- Every failure becomes :class:`OAuthFailure` with OAuth's error code (``invalid_grant``...) or
  the transport's failure type: never a token, never LaunchDarkly's raw body.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import utcnow
from bot.config import Settings
from bot.launchdarkly.client import tls_context
from bot.persistence.db import oauth_states
from bot.slack.messenger import ReplyTo

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

STATE_TTL = timedelta(minutes=10)
MAX_TOKEN_LIFE = timedelta(days=365)
SCOPE = "writer"


class OAuthFailure(Exception):
    """The token endpoint refused (``reason``: OAuth's error code) or could not be reached."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint gave: sent as ``Bearer <access>``; refreshed before ``expires_at``."""

    access: str
    refresh: str | None
    expires_at: datetime | None

    def __repr__(self) -> str:  # never a token in a repr (logs, tracebacks)
        return f"Tokens(expires_at={self.expires_at!r}, refreshable={self.refresh is not None})"


@dataclass(frozen=True)
class PendingConnect:
    """A Connect button's authorization, once its ``state`` came back: who, where to answer,
    and what to do once connected."""

    slack_user_id: str
    team_id: str
    reply: ReplyTo
    resume: dict[str, Any] | None


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _expiry(expires_in: object) -> datetime | None:
    """When an access token expires (``expires_in`` seconds from now, at most a year; None when
    the answer does not say or says nonsense)."""
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        return None
    try:
        seconds = min(max(float(expires_in), 0.0), MAX_TOKEN_LIFE.total_seconds())
    except (ValueError, OverflowError):
        return None
    if seconds != seconds:  # NaN
        return None
    return utcnow() + timedelta(seconds=seconds)


class OAuthStates:
    """The ``oauth_states`` table: one row per Connect button, taken once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self, slack_user_id: str, team_id: str, reply: ReplyTo, resume: dict[str, Any] | None = None
    ) -> str:
        """A new ``state`` for this user (the value itself is returned, only its hash stored)."""
        state = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.engine.begin() as connection:
            # Keep the table small: an authorization over a day old is of no use to anyone.
            stale = now - timedelta(days=1)
            await connection.execute(delete(oauth_states).where(oauth_states.c.expires_at < stale))
            await connection.execute(
                insert(oauth_states).values(
                    state_hash=state_hash(state),
                    slack_user_id=slack_user_id,
                    team_id=team_id,
                    reply_json=json.dumps(
                        {
                            "channel_id": reply.channel_id,
                            "response_url": reply.response_url,
                            "thread_ts": reply.thread_ts,
                        }
                    ),
                    resume_json=json.dumps(resume) if resume is not None else None,
                    created_at=now,
                    expires_at=now + STATE_TTL,
                )
            )
        return state

    async def take(self, state: str) -> PendingConnect | None:
        """The authorization ``state`` belongs to, used up now; None when it is unknown, used or
        expired (one conditional UPDATE: of two callbacks with one state, one wins)."""
        now = utcnow()
        statement = (
            update(oauth_states)
            .where(
                oauth_states.c.state_hash == state_hash(state),
                oauth_states.c.used_at.is_(None),
                oauth_states.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(*oauth_states.c)
        )
        async with self.engine.begin() as connection:
            row = (await connection.execute(statement)).mappings().first()
        if row is None:
            return None
        where = json.loads(row["reply_json"])
        user = str(row["slack_user_id"])
        reply = ReplyTo(
            str(where.get("channel_id") or ""), user, where.get("response_url"), where.get("thread_ts")
        )
        resume = json.loads(row["resume_json"]) if row["resume_json"] else None
        return PendingConnect(user, str(row["team_id"]), reply, resume)


class LaunchDarklyOAuth:
    """The bot's OAuth client at LaunchDarkly (``LD_OAUTH_CLIENT_ID`` / ``_SECRET``)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.ld_oauth_client_id and settings.ld_oauth_client_secret
        self.settings = settings
        self.client_id = settings.ld_oauth_client_id
        self._secret = settings.ld_oauth_client_secret
        self.authorize_url = f"{settings.ld_base_url}/trust/oauth/authorize"
        self.token_url = f"{settings.ld_base_url}/trust/oauth/token"

    def _client(self) -> AsyncOAuth2Client:
        # Authlib is imported on the first Connect only (a process that never sees one, or where
        # OAuth is not set up, does not hold it: bench/README.md, RSS).
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._secret.get_secret_value(),
            scope=SCOPE,
            redirect_uri=self.settings.oauth_callback_url,
            token_endpoint_auth_method="client_secret_post",
            timeout=self.settings.ld_timeout,
            verify=tls_context(),
        )

    def authorization_url(self, state: str) -> str:
        """Where the Connect button sends the person."""
        query = {
            "client_id": self.client_id,
            "redirect_uri": self.settings.oauth_callback_url,
            "response_type": "code",
            "scope": SCOPE,
            "state": state,
        }
        return f"{self.authorize_url}?{urlencode(query)}"

    async def exchange(self, code: str) -> Tokens:
        """The tokens for an authorization code (the callback's ``code``).

        Raises:
            OAuthFailure: the code was refused or LaunchDarkly could not be reached.
        """
        return await self._token(grant_type="authorization_code", code=code)

    async def refresh(self, refresh_token: str) -> Tokens:
        """New tokens for a refresh token (the refresh token may rotate).

        Raises:
            OAuthFailure: the refresh was refused (revoked, expired) or could not be made.
        """
        return await self._token(grant_type="refresh_token", refresh_token=refresh_token)

    async def _token(self, **grant: str) -> Tokens:
        from authlib.integrations.base_client.errors import OAuthError

        try:
            async with self._client() as client:
                if grant["grant_type"] == "refresh_token":
                    answer = await client.refresh_token(self.token_url, refresh_token=grant["refresh_token"])
                else:
                    answer = await client.fetch_token(
                        self.token_url, code=grant["code"], grant_type="authorization_code"
                    )
        except OAuthError as error:
            raise OAuthFailure(str(error.error or "oauth_error")) from None
        except (httpx.HTTPError, ValueError) as error:
            raise OAuthFailure(type(error).__name__) from None
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthFailure("no_access_token")
        expires_at = _expiry(answer.get("expires_in"))
        refresh = answer.get("refresh_token")
        return Tokens(access, refresh if isinstance(refresh, str) and refresh else None, expires_at)
