"""Linked LaunchDarkly accounts: each Slack user may act in LaunchDarkly as their own member.

LaunchDarkly records who requested, reviewed and applied a change, and refuses a requester
reviewing their own request where the environment forbids it. With one service token the bot
would be every requester and every reviewer, so a Slack user can paste a personal access token
(``/flag link-account`` opens a modal: never in a channel). The bot checks which member it belongs
to (``GET /api/v2/caller-identity``), stores it Fernet-encrypted with ``FLAGOPS_SECRET_KEY`` and
from then on uses it for that user's approval requests, reviews and applies.

Tokens never leave this module in clear except as the ``token=`` argument of a LaunchDarkly call
(which puts it in the ``Authorization`` header only): never in a message, a log line or an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import utcnow
from bot.config import Settings
from bot.errors import error_text
from bot.identity.oauth import LaunchDarklyOAuth, OAuthFailure, OAuthStates, PendingConnect, Tokens
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.models import Member
from bot.persistence.db import linked_accounts
from bot.slack import blocks
from bot.slack.messenger import Messenger, ReplyTo, SlackFailure
from bot.slack.metadata import ModalMetadata
from commands.errors import CommandError

log = logging.getLogger(__name__)

LINK_ACCOUNT_CALLBACK = "link_account"
CONNECT_ACTION = "connect_launchdarkly"  # a link button: Slack still sends its click, which is acked
REFRESH_MARGIN = timedelta(seconds=60)
# The person's grant is gone (revoked, expired): their connection ends. Not the bot's own client's
# errors (invalid_client, unauthorized_client: a wrong or rotated LD_OAUTH_CLIENT_SECRET), which
# would otherwise end everyone's connection at once; those are the operator's to fix.
REFUSED_GRANTS = frozenset({"invalid_grant", "no_access_token"})
CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
TOKEN_BLOCK = "token"
TOKEN_ACTION = "token"
LINK_HINT = (
    "Link your own LaunchDarkly account with `/flag link-account` so LaunchDarkly sees you as yourself."
)


class AccountsNotConfigured(CommandError):
    """``FLAGOPS_SECRET_KEY`` is not set: tokens cannot be stored safely, so none are."""

    def __init__(self) -> None:
        super().__init__(
            "Linking LaunchDarkly accounts is not set up here: an admin must set FLAGOPS_SECRET_KEY "
            "(tokens are stored encrypted with it). Nothing was stored."
        )


def fernet_for(secret: SecretStr) -> Fernet:
    """The Fernet cipher for ``FLAGOPS_SECRET_KEY``.

    A proper Fernet key (``Fernet.generate_key()``) is used as it is; any other secret string is
    stretched with SHA-256 into one, so an operator may set a long random passphrase instead.

    Args:
        secret: the configured key.

    Returns:
        The cipher.
    """
    raw = secret.get_secret_value().strip()
    try:
        if len(base64.urlsafe_b64decode(raw.encode())) == 32:
            return Fernet(raw.encode())
    except (binascii.Error, ValueError):
        pass  # not a Fernet key: derive one below
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest()))


class LinkedAccount(BaseModel):
    """A Slack user's link to a LaunchDarkly member (without the token)."""

    model_config = ConfigDict(frozen=True)

    slack_user_id: str
    member_id: str
    member_email: str | None
    linked_at: datetime


@dataclass(frozen=True)
class Grant:
    """An OAuth link's renewal material (never in a repr)."""

    refresh: str | None
    expires_at: datetime | None
    version: str  # the stored refresh token's ciphertext: what a renewal is conditional on

    def __repr__(self) -> str:
        return f"Grant(expires_at={self.expires_at!r}, refreshable={self.refresh is not None})"


@dataclass(frozen=True)
class Connected:
    """How an OAuth callback ended: whether the account is connected, what the browser page says,
    and the authorization it completed (what to resume), when its ``state`` was good."""

    ok: bool
    page: str
    pending: PendingConnect | None = None


@dataclass(frozen=True)
class Acting:
    """How a Slack user acts in LaunchDarkly: their own token, or the bot's service token."""

    user_id: str
    token: str | None
    """The linked token, or None for the service token."""
    member_id: str | None = None
    member_email: str | None = None
    oauth: bool = False
    """Connected through OAuth (``token`` is then ``Bearer <access token>``)."""

    @property
    def linked(self) -> bool:
        return self.token is not None

    def __repr__(self) -> str:  # the token never appears in a repr (logs, tracebacks)
        return f"Acting(user_id={self.user_id!r}, linked={self.linked}, member_id={self.member_id!r})"


class AccountStore:
    """The ``linked_accounts`` table; tokens are encrypted before they reach it."""

    def __init__(self, engine: AsyncEngine, secret_key: SecretStr | None) -> None:
        self.engine = engine
        self._fernet = fernet_for(secret_key) if secret_key is not None else None

    @property
    def configured(self) -> bool:
        """Whether tokens can be stored (a secret key is set)."""
        return self._fernet is not None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            raise AccountsNotConfigured()
        return self._fernet

    async def link(self, slack_user_id: str, member_id: str, member_email: str | None, token: str) -> None:
        """Store (or replace) a Slack user's link, the token encrypted.

        Raises:
            AccountsNotConfigured: no ``FLAGOPS_SECRET_KEY``.
        """
        ciphertext = self._cipher().encrypt(token.encode()).decode()
        values: dict[str, Any] = {
            "member_id": member_id,
            "member_email": member_email,
            "token_ciphertext": ciphertext,
            "linked_at": utcnow(),
            "token_kind": "personal",
            "refresh_ciphertext": None,
            "expires_at": None,
        }
        await self._upsert(slack_user_id, values)

    async def link_oauth(
        self, slack_user_id: str, member_id: str, member_email: str | None, tokens: Tokens
    ) -> None:
        """Store (or replace) a Slack user's OAuth connection, both tokens encrypted.

        Raises:
            AccountsNotConfigured: no ``FLAGOPS_SECRET_KEY``.
        """
        cipher = self._cipher()
        values: dict[str, Any] = {
            "member_id": member_id,
            "member_email": member_email,
            "token_ciphertext": cipher.encrypt(tokens.access.encode()).decode(),
            "refresh_ciphertext": cipher.encrypt(tokens.refresh.encode()).decode()
            if tokens.refresh
            else None,
            "expires_at": tokens.expires_at,
            "token_kind": "oauth",
            "linked_at": utcnow(),
        }
        await self._upsert(slack_user_id, values)

    async def _upsert(self, slack_user_id: str, values: dict[str, Any]) -> None:
        """Replace a Slack user's link, or make it."""
        async with self.engine.begin() as connection:
            done = await connection.execute(
                update(linked_accounts).where(linked_accounts.c.slack_user_id == slack_user_id).values(values)
            )
            if done.rowcount == 0:
                await connection.execute(
                    insert(linked_accounts).values(slack_user_id=slack_user_id, **values)
                )

    async def grant(self, slack_user_id: str) -> Grant | None:
        """An OAuth link's refresh token (decrypted), when its access token expires, and the
        stored ciphertext of that refresh token: the version a renewal is conditional on."""
        row = await self._row(linked_accounts.c.slack_user_id == slack_user_id)
        if row is None or row.get("token_kind") != "oauth":
            return None
        version = row.get("refresh_ciphertext")
        refresh = None
        if self._fernet is not None and version:
            try:
                refresh = self._fernet.decrypt(str(version).encode()).decode()
            except InvalidToken:
                refresh = None
        return Grant(refresh, row.get("expires_at"), str(version or ""))

    async def renew(self, slack_user_id: str, tokens: Tokens, version: str) -> bool:
        """Store renewed tokens only if the link is still the one renewed (same refresh token
        ciphertext): never re-creates a link deleted meanwhile (an unlink), never overwrites a
        renewal another request or instance made first. True when stored."""
        cipher = self._cipher()
        values = {
            "token_ciphertext": cipher.encrypt(tokens.access.encode()).decode(),
            "refresh_ciphertext": cipher.encrypt(tokens.refresh.encode()).decode()
            if tokens.refresh
            else None,
            "expires_at": tokens.expires_at,
        }
        async with self.engine.begin() as connection:
            done = await connection.execute(
                update(linked_accounts)
                .where(
                    linked_accounts.c.slack_user_id == slack_user_id,
                    linked_accounts.c.refresh_ciphertext == version,
                )
                .values(values)
            )
        return bool(done.rowcount)

    async def unlink_version(self, slack_user_id: str, token_ciphertext: str | None) -> bool:
        """Forget a link only if it still holds the token that failed (``token_ciphertext``; None:
        whatever it holds). A link made again meanwhile stays."""
        condition = linked_accounts.c.slack_user_id == slack_user_id
        if token_ciphertext is not None:
            condition = condition & (linked_accounts.c.token_ciphertext == token_ciphertext)
        async with self.engine.begin() as connection:
            done = await connection.execute(delete(linked_accounts).where(condition))
        return bool(done.rowcount)

    async def unlink(self, slack_user_id: str) -> bool:
        """Forget a Slack user's link; True when there was one."""
        async with self.engine.begin() as connection:
            done = await connection.execute(
                delete(linked_accounts).where(linked_accounts.c.slack_user_id == slack_user_id)
            )
        return bool(done.rowcount)

    async def get(self, slack_user_id: str) -> LinkedAccount | None:
        """The link of a Slack user, without the token."""
        row = await self._row(linked_accounts.c.slack_user_id == slack_user_id)
        return LinkedAccount.model_validate(row) if row is not None else None

    async def slack_user_for_member(self, member_id: str) -> str | None:
        """The Slack user linked to a LaunchDarkly member, when one is."""
        row = await self._row(linked_accounts.c.member_id == member_id)
        return str(row["slack_user_id"]) if row is not None else None

    async def acting(self, slack_user_id: str) -> Acting:
        """How ``slack_user_id`` acts: their token when linked (and decryptable), else the service's."""
        row = await self._row(linked_accounts.c.slack_user_id == slack_user_id)
        if row is None or self._fernet is None:
            return Acting(slack_user_id, None)
        try:
            token = self._fernet.decrypt(str(row["token_ciphertext"]).encode()).decode()
        except InvalidToken:
            # The key was rotated: the stored token is unreadable. Acting as the service is what an
            # unlinked user gets; the user is told to link again when LaunchDarkly refuses.
            log.warning("the linked token of %s cannot be decrypted with the current key", slack_user_id)
            return Acting(slack_user_id, None)
        if row.get("token_kind") == "oauth":
            # OAuth access tokens are sent as Bearer; personal access tokens stay bare.
            return Acting(
                slack_user_id, f"Bearer {token}", str(row["member_id"]), row["member_email"], oauth=True
            )
        return Acting(slack_user_id, token, str(row["member_id"]), row["member_email"])

    async def _row(self, condition: Any) -> dict[str, Any] | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(linked_accounts).where(condition))).mappings().first()
        return dict(row) if row is not None else None


def link_modal(reply: ReplyTo) -> dict[str, Any]:
    """The modal where a user pastes their personal access token.

    Args:
        reply: where to confirm afterwards (kept in ``private_metadata``: a view submission says
            neither channel nor thread).

    Returns:
        The view.
    """
    return blocks.modal(
        LINK_ACCOUNT_CALLBACK,
        "Link LaunchDarkly",
        "Link",
        ModalMetadata.of(reply).encode(),
        [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        "Paste a LaunchDarkly *personal access token* (Account settings → Authorization). "
                        "flagops then requests, reviews and applies changes *as you*. The token is stored "
                        "encrypted and never shown in Slack; `/flag unlink-account` forgets it."
                    ),
                },
            },
            {
                "type": "input",
                "block_id": TOKEN_BLOCK,
                "label": {"type": "plain_text", "text": "Personal access token"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": TOKEN_ACTION,
                    "placeholder": {"type": "plain_text", "text": "api-…"},
                },
            },
        ],
    )


def reply_from_metadata(metadata: str, user_id: str) -> ReplyTo:
    """The ``ReplyTo`` a modal carried in its ``private_metadata`` (see :func:`link_modal`)."""
    return ModalMetadata.decode(metadata).reply(user_id)


class AccountService:
    """``/flag link-account``, its modal, ``/flag unlink-account``, and who acts as whom."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: AccountStore,
        ld: LaunchDarklyClient,
        messenger: Messenger,
        states: OAuthStates | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ld = ld
        self.messenger = messenger
        # Connect with LaunchDarkly (OAuth) where a client is configured; else the pasted token.
        self.oauth = LaunchDarklyOAuth(settings) if settings.oauth_configured else None
        self.states = states or OAuthStates(store.engine)
        self._renewing: dict[str, asyncio.Lock] = {}  # one renewal at a time per user, per process

    async def tell(self, reply: ReplyTo, text: str) -> None:
        message, body = blocks.render_notice(text)
        await self.messenger.ephemeral(reply, message, body)

    async def open_link_modal(self, reply: ReplyTo, trigger_id: str | None, team_id: str = "") -> None:
        """``/flag link-account``: the Connect LaunchDarkly button where OAuth is configured, else
        the token modal (first thing after the ack: a ``trigger_id`` lives ~3 seconds)."""
        if self.oauth is not None:
            await self.connect_prompt(
                reply.user_id,
                team_id,
                reply,
                ":link: Connect your LaunchDarkly account: flagops then requests, reviews and applies "
                "changes *as you*, within your LaunchDarkly role. The button opens LaunchDarkly in your "
                "browser; come back here when it says you are connected.",
            )
            return
        if not self.store.configured:
            await self.tell(reply, f":warning: {AccountsNotConfigured().message}")
            return
        if not trigger_id:
            await self.tell(reply, ":warning: Slack sent no trigger to open the form; run the command again.")
            return
        await self.messenger.open_view(trigger_id, link_modal(reply))

    async def link(self, user_id: str, token: str, reply: ReplyTo) -> None:
        """Check a pasted token with LaunchDarkly, store it encrypted, and confirm to the user alone.

        Every answer names the member or the reason, never the token.
        """
        token = token.strip()
        if not token:
            await self.tell(reply, ":warning: The token was empty. Nothing was stored.")
            return
        if not _printable_ascii(token):
            # A header cannot carry it (the HTTP client would fail with a generic error): say what
            # is wrong, never what was pasted.
            await self.tell(
                reply,
                ":warning: That token contains a character a LaunchDarkly token never has (a space, a "
                "line break, an invisible or non-ASCII character: copying from a document can add "
                "them). Nothing was stored; copy the token again from LaunchDarkly and paste it alone.",
            )
            return
        try:
            identity = await self.ld.get_caller_identity(token=token)
        except ld_errors.Unauthorized:
            await self.tell(
                reply,
                ":warning: LaunchDarkly did not accept that token (401: unknown, revoked or expired). "
                "Nothing was stored; run `/flag link-account` again with a valid personal access token.",
            )
            return
        except ld_errors.LaunchDarklyError as error:
            await self.tell(
                reply,
                f":warning: Could not check the token with LaunchDarkly ({type(error).__name__}, "
                f"status {error.status}): {error_text(error)}. Nothing was stored.",
            )
            return
        if identity.member_id is None or identity.service_token:
            await self.tell(
                reply,
                ":warning: That token does not belong to a member (it is a service token). Paste a "
                "*personal* access token so LaunchDarkly records you. Nothing was stored.",
            )
            return
        # The member's name and email only label the link: if LaunchDarkly does not give them, the
        # token still belongs to the member caller-identity named, and the link stands.
        try:
            member: Member | None = await self.ld.get_member(identity.member_id, token=token)
        except ld_errors.LaunchDarklyError as error:
            log.info("member lookup after linking failed: %s %s", type(error).__name__, error.status)
            member = None
        member_id = member.id if member else identity.member_id
        email = member.email if member else None
        await self.store.link(user_id, member_id, email, token)
        log.info("slack user %s linked to LaunchDarkly member %s", user_id, member_id)
        who = (
            f"*{blocks.escape(member.display_name)}* ({blocks.escape(member.email or member.id)})"
            if member
            else f"member `{blocks.escape(member_id)}` (LaunchDarkly did not give its name just now)"
        )
        await self.tell(
            reply, f":link: Linked: you now act in LaunchDarkly as {who}. `/flag unlink-account` undoes it."
        )

    async def unlink(self, user_id: str, reply: ReplyTo) -> None:
        """Forget the user's token."""
        if await self.store.unlink(user_id):
            log.info("slack user %s unlinked their LaunchDarkly account", user_id)
            await self.tell(reply, ":broken_chain: Unlinked: your LaunchDarkly token is deleted.")
        else:
            await self.tell(reply, "You had no linked LaunchDarkly account.")

    async def acting(self, user_id: str) -> Acting:
        """How ``user_id`` acts in LaunchDarkly now: an OAuth connection's access token is renewed
        first when it expires within a minute; a refused renewal ends the connection (the person
        is told) and they act as an unlinked user."""
        acting = await self.store.acting(user_id)
        if not acting.oauth or self.oauth is None:
            return acting
        grant = await self.store.grant(user_id)
        if grant is None or (grant.expires_at is not None and grant.expires_at - utcnow() > REFRESH_MARGIN):
            return acting
        async with self._renewing.setdefault(user_id, asyncio.Lock()):
            return await self._renew(user_id, acting)

    async def _renew(self, user_id: str, acting: Acting) -> Acting:
        # Read again under the lock: a renewal that ran while this one waited is used as it is.
        grant = await self.store.grant(user_id)
        if grant is None:
            return await self.store.acting(user_id)
        if grant.expires_at is not None and grant.expires_at - utcnow() > REFRESH_MARGIN:
            return await self.store.acting(user_id)
        if grant.refresh is None:
            await self._forget_if(
                user_id, grant.version, "it expired and LaunchDarkly gave no way to renew it"
            )
            return Acting(user_id, None)
        try:
            tokens = await self.oauth.refresh(grant.refresh) if self.oauth else None
        except OAuthFailure as failure:
            if failure.reason in CLIENT_ERRORS:
                log.error(
                    "LaunchDarkly refused flagops' OAuth client (%s): check LD_OAUTH_CLIENT_ID and "
                    "LD_OAUTH_CLIENT_SECRET; connections are kept",
                    failure.reason,
                )
                return acting
            if failure.reason not in REFUSED_GRANTS:
                # LaunchDarkly did not answer: the current token may still be good for a while.
                log.warning("renewing %s's LaunchDarkly connection failed (%s)", user_id, failure.reason)
                return acting
            # The refresh token rotates: another instance may have renewed with this very one.
            await self._forget_if(
                user_id, grant.version, f"LaunchDarkly refused to renew it ({failure.reason})"
            )
            return await self.store.acting(user_id)
        if tokens is None or not await self.store.renew(user_id, tokens, grant.version):
            return await self.store.acting(user_id)  # unlinked or renewed elsewhere meanwhile
        return await self.store.acting(user_id)

    async def _forget_if(self, user_id: str, version: str, why: str) -> None:
        """Forget the link only if it still holds the refresh token that failed."""
        current = await self.store.grant(user_id)
        if current is None or current.version != version:
            return
        await self.forget(user_id, why)

    async def forget(self, user_id: str, why: str, *, token_ciphertext: str | None = None) -> None:
        """End a link LaunchDarkly no longer honours (a 401, a refused renewal) and tell the person
        in their direct messages with the app, with the way back."""
        if not await self.store.unlink_version(user_id, token_ciphertext):
            return
        log.info("the LaunchDarkly link of %s was dropped: %s", user_id, why)
        again = (
            "Connect again with `/flag link-account`." if self.oauth else "Run `/flag link-account` again."
        )
        await self._tell_quietly(
            ReplyTo("", user_id),
            f":broken_chain: Your LaunchDarkly connection ended: {blocks.escape(why)}. I forgot it. {again}",
        )

    async def _tell_quietly(self, reply: ReplyTo, text: str) -> None:
        """Tell the person; Slack refusing it changes nothing of what was done (it is logged)."""
        try:
            await self.tell(reply, text)
        except SlackFailure as failure:
            log.warning("could not tell %s (%s)", reply.user_id, failure.reason)

    async def revoked(self, acting: Acting) -> None:
        """LaunchDarkly answered 401 to a linked token: it was revoked or expired; forget it (only
        if the link still holds that token: one made again meanwhile stays)."""
        if acting.linked and (await self.store.acting(acting.user_id)).token == acting.token:
            await self.forget(acting.user_id, "LaunchDarkly no longer accepts it (401)")

    # --- Connect with LaunchDarkly (OAuth) --------------------------------------------------------

    async def connect_prompt(
        self, user_id: str, team_id: str, reply: ReplyTo, text: str, resume: dict[str, Any] | None = None
    ) -> None:
        """Tell the person ``text`` with a **Connect LaunchDarkly** button (its authorization is
        bound to them and to ``resume``: what to do once connected)."""
        assert self.oauth is not None
        state = await self.states.create(user_id, team_id, reply, resume)
        url = self.oauth.authorization_url(state)
        message, body = blocks.render_notice(text)
        body.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": CONNECT_ACTION,
                        "text": {"type": "plain_text", "text": "Connect LaunchDarkly"},
                        "url": url,
                        "style": "primary",
                    }
                ],
            }
        )
        await self.messenger.ephemeral(reply, message, body)

    async def complete_connect(self, state: str, code: str | None, error: str | None) -> Connected:
        """The OAuth callback: check the ``state``, exchange the code, find the member, check it is
        the same person as the Slack user the button was made for, store the connection, tell the
        person in Slack. Returns what the browser page says, and what to resume.

        The ``state`` binds the authorization to a Slack user, not to who signs in: a Connect link
        forwarded to someone else would attach *their* LaunchDarkly member to the sender. So the
        member's email must be the Slack user's own (``users.info``), and a member already linked
        to another Slack user is refused.
        """
        pending = await self.states.take(state) if state else None
        if pending is None or self.oauth is None:
            return Connected(
                False,
                "This Connect link has expired or was already used. Go back to Slack "
                "and run /flag link-account again.",
            )
        if error or not code:
            reason = blocks.clip(error or "no code", 200)
            await self._tell_quietly(
                pending.reply, f":warning: Not connected: LaunchDarkly said `{blocks.escape(reason)}`."
            )
            return Connected(
                False,
                "LaunchDarkly did not grant access, so nothing was connected. "
                "You can close this page and return to Slack.",
                pending,
            )
        try:
            tokens = await self.oauth.exchange(code)
            bearer = f"Bearer {tokens.access}"
            identity = await self.ld.get_caller_identity(token=bearer)
            member = (
                await self.ld.get_member(identity.member_id, token=bearer) if identity.member_id else None
            )
        except (OAuthFailure, ld_errors.LaunchDarklyError) as failure:
            reason = failure.reason if isinstance(failure, OAuthFailure) else type(failure).__name__
            log.info("connecting %s failed: %s", pending.slack_user_id, reason)
            await self._tell_quietly(
                pending.reply,
                f":warning: Not connected: LaunchDarkly refused ({blocks.escape(reason)}). "
                "Try `/flag link-account` again.",
            )
            return Connected(
                False, "LaunchDarkly refused the connection. Return to Slack and try again.", pending
            )
        refusal = await self._not_the_same_person(pending.slack_user_id, identity.member_id, member)
        if refusal is not None or member is None:
            refusal = refusal or "That sign-in is not a LaunchDarkly member."
            log.warning("connecting %s refused: %s", pending.slack_user_id, refusal)
            await self._tell_quietly(pending.reply, f":no_entry: Not connected: {blocks.escape(refusal)}")
            return Connected(False, f"Not connected: {refusal}", pending)
        await self.store.link_oauth(pending.slack_user_id, member.id, member.email, tokens)
        log.info("slack user %s connected LaunchDarkly member %s (OAuth)", pending.slack_user_id, member.id)
        shown = member.email or member.id
        await self._tell_quietly(
            pending.reply,
            f":link: Connected: you now act in LaunchDarkly as *{blocks.escape(shown)}*. "
            "`/flag unlink-account` disconnects.",
        )
        return Connected(
            True,
            f"Your LaunchDarkly account ({shown}) is connected to flagops. "
            "You can close this page and return to Slack.",
            pending,
        )

    async def _not_the_same_person(
        self, slack_user_id: str, member_id: str | None, member: Member | None
    ) -> str | None:
        """Why the signed-in member may not be linked to this Slack user, or None."""
        if member is None or member_id is None:
            return "That sign-in is not a LaunchDarkly member."
        try:
            profile = (await self.messenger.user(slack_user_id)).get("profile") or {}
        except SlackFailure as failure:
            return f"Slack did not say your email ({failure.reason}), so I cannot check it is you."
        slack_email = str(profile.get("email") or "").strip().lower()
        if not slack_email or slack_email != (member.email or "").strip().lower():
            return (
                "you signed in to LaunchDarkly as someone else than your Slack account's email. "
                "Sign in as yourself: a Connect link works only for the person it was made for."
            )
        other = await self.store.slack_user_for_member(member.id)
        if other is not None and other != slack_user_id:
            return "that LaunchDarkly member is already connected to another Slack user."
        return None

    async def require(self, user_id: str, reply: ReplyTo, what: str, team_id: str = "") -> Acting | None:
        """The acting identity, or None (after telling the user) when a link is required and missing.

        Args:
            user_id: the Slack user.
            reply: where to tell them.
            what: what they tried, e.g. ``"approve"``.
        """
        acting = await self.acting(user_id)
        if acting.linked or not self.settings.flagops_require_linked_accounts:
            return acting
        if self.oauth is not None:
            await self.connect_prompt(
                user_id,
                team_id,
                reply,
                f":closed_lock_with_key: To {what} you need your LaunchDarkly account connected here, so "
                "LaunchDarkly records you and applies your role. Nothing was changed.",
            )
            return None
        await self.tell(
            reply,
            f":closed_lock_with_key: To {what} you need your own LaunchDarkly account linked here. "
            "Run `/flag link-account` first. Nothing was changed.",
        )
        return None


def _printable_ascii(token: str) -> bool:
    """Whether a pasted token is made only of visible ASCII characters (no space, no control or
    zero-width character), as every LaunchDarkly access token is."""
    return all("!" <= character <= "~" for character in token)
