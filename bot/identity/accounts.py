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

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import utcnow
from bot.config import Settings
from bot.errors import error_text
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.models import Member
from bot.persistence.db import linked_accounts
from bot.slack import blocks
from bot.slack.messenger import Messenger, ReplyTo
from bot.slack.metadata import ModalMetadata
from commands.errors import CommandError

log = logging.getLogger(__name__)

LINK_ACCOUNT_CALLBACK = "link_account"
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
class Acting:
    """How a Slack user acts in LaunchDarkly: their own token, or the bot's service token."""

    user_id: str
    token: str | None
    """The linked token, or None for the service token."""
    member_id: str | None = None
    member_email: str | None = None

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
        }
        async with self.engine.begin() as connection:
            done = await connection.execute(
                update(linked_accounts).where(linked_accounts.c.slack_user_id == slack_user_id).values(values)
            )
            if done.rowcount == 0:
                await connection.execute(
                    insert(linked_accounts).values(slack_user_id=slack_user_id, **values)
                )

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
    ) -> None:
        self.settings = settings
        self.store = store
        self.ld = ld
        self.messenger = messenger

    async def tell(self, reply: ReplyTo, text: str) -> None:
        message, body = blocks.render_notice(text)
        await self.messenger.ephemeral(reply, message, body)

    async def open_link_modal(self, reply: ReplyTo, trigger_id: str | None) -> None:
        """Open the token modal (first thing after the ack: a ``trigger_id`` lives ~3 seconds)."""
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
        """How ``user_id`` acts in LaunchDarkly now."""
        return await self.store.acting(user_id)

    async def require(self, user_id: str, reply: ReplyTo, what: str) -> Acting | None:
        """The acting identity, or None (after telling the user) when a link is required and missing.

        Args:
            user_id: the Slack user.
            reply: where to tell them.
            what: what they tried, e.g. ``"approve"``.
        """
        acting = await self.acting(user_id)
        if acting.linked or not self.settings.flagops_require_linked_accounts:
            return acting
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
