"""The one door to Slack's Web API for the features.

Builders in ``bot.slack.blocks`` return ``(text, blocks)``; the change lifecycle decides what to say;
this module says it: cards and thread replies with ``chat.postMessage``, card updates with
``chat.update``, answers for one person through the payload's ``response_url`` (which works even
where the bot is not a member) or ``chat.postEphemeral``. It also asks what the features need to
know (``users.info``, ``usergroups.users.list``, ``chat.getPermalink``, ``auth.test``) and opens
modals (``views.open``).

Every failure leaves as :class:`SlackFailure` (Slack's refusal, with its error code, or no answer),
so no code outside ``bot.slack`` imports slack_sdk or aiohttp.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.config import Settings
from bot.slack.client import defuse
from commands.errors import FlagopsError

log = logging.getLogger(__name__)

# chat.postMessage errors that mean "the bot may not post in this channel" rather than a bug.
CANNOT_POST = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "not_allowed_token_type"}
)


class SlackFailure(Exception):
    """A Slack Web API call that failed: Slack refused it (``reason`` is its error code, e.g.
    ``user_not_found``) or did not answer (``reason`` is the failure's type, e.g. ``TimeoutError``).

    Not a :class:`FlagopsError`: it is never shown to the user as it is; each caller says what it
    means for what the person asked.
    """

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"{method}: {reason}")
        self.method = method
        self.reason = reason


#: What a Slack Web API call may raise, as seen outside this package.
SLACK_FAILURES: tuple[type[Exception], ...] = (SlackFailure,)

# What slack_sdk raises: Slack's refusal, or no answer at all.
_WIRE_FAILURES: tuple[type[Exception], ...] = (SlackApiError, aiohttp.ClientError, OSError, TimeoutError)


def _failure(method: str, error: BaseException) -> SlackFailure:
    if isinstance(error, SlackApiError):
        return SlackFailure(method, str(error.response.get("error") or "unknown_error"))
    return SlackFailure(method, type(error).__name__)


@contextlib.asynccontextmanager
async def _calling(method: str) -> AsyncIterator[None]:
    """Run one Web API call; any failure of it leaves as :class:`SlackFailure`."""
    try:
        yield
    except _WIRE_FAILURES as error:
        raise _failure(method, error) from error


# chat.postEphemeral's refusals that a direct message gets around (no channel; the user not in it).
_NO_EPHEMERAL = frozenset({"user_not_in_channel", "invalid_arguments", "no_channel"})


class CannotPost(FlagopsError):
    """Slack refused to let the bot post in a channel (``reason`` is Slack's error code)."""

    is_mrkdwn = True  # the channel is a mention built from its id
    icon = ":no_entry:"

    def __init__(self, channel_id: str, reason: str) -> None:
        super().__init__(
            f"I can't post in <#{channel_id}> ({reason}). Invite me first: type `/invite @flagops` "
            "in the channel, then run the command again. Nothing was changed."
        )
        self.reason = reason


@dataclass(frozen=True)
class ReplyTo:
    """Where an answer for one person goes."""

    channel_id: str
    user_id: str
    response_url: str | None = None
    thread_ts: str | None = None


SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_slack_response_url(url: str | None, hosts: frozenset[str] = SLACK_RESPONSE_HOSTS) -> bool:
    """Whether ``url`` is a ``response_url`` on one of ``hosts`` (https; http only on loopback).

    A payload's ``response_url`` is data from the request: the bot posts to it only on Slack's
    own hosts, so a forged or tampered one never makes the bot send anything elsewhere.
    """
    if not url:
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if host not in hosts:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)


class PostWatch(Protocol):
    """Told before and after each ``chat.postMessage`` made through :meth:`Messenger.post` in its
    context (``bot.inbox``: the inbox row being worked records that it posts, then the ``ts``, so
    that a worker taking it over never posts a second card). ``before_post`` may raise to stop the
    post (the row is no longer this worker's)."""

    async def before_post(self, channel: str) -> None: ...

    async def after_post(self, channel: str, ts: str) -> None: ...


POST_WATCH: ContextVar[PostWatch | None] = ContextVar("flagops_post_watch", default=None)
"""The watch of the work running in this context (none outside an inbox row)."""


class Messenger:
    """Sends cards, replies and ephemeral answers through one ``AsyncWebClient``."""

    def __init__(
        self, client: AsyncWebClient, *, response_hosts: frozenset[str] = SLACK_RESPONSE_HOSTS
    ) -> None:
        self.client = client
        self.response_hosts = response_hosts

    @classmethod
    def of(cls, client: AsyncWebClient, settings: Settings) -> Messenger:
        """A messenger whose ``response_url``s are limited to ``FLAGOPS_RESPONSE_URL_HOSTS``."""
        return cls(client, response_hosts=settings.response_url_hosts)

    async def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]], *, thread_ts: str | None = None
    ) -> str:
        """Post a message; return its ``ts``.

        Raises:
            CannotPost: the bot may not post in ``channel``.
            SlackFailure: Slack refused it otherwise, or did not answer.
        """
        watch = POST_WATCH.get()
        if watch is not None:
            await watch.before_post(channel)
        try:
            response = await self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False
            )
        except _WIRE_FAILURES as error:
            failure = _failure("chat.postMessage", error)
            if failure.reason in CANNOT_POST:
                raise CannotPost(channel, failure.reason) from error
            raise failure from error
        ts = str(response["ts"])
        if watch is not None:
            await watch.after_post(channel, ts)
        return ts

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a message the bot posted (a card after a click).

        Raises:
            SlackFailure: Slack refused it (the message is gone, the bot left) or did not answer.
        """
        async with _calling("chat.update"):
            await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal (``views.open``): first thing after the ack, a ``trigger_id`` lives ~3 s.

        Raises:
            SlackFailure: Slack refused it (an expired trigger, an invalid view) or did not answer.
        """
        async with _calling("views.open"):
            await self.client.views_open(trigger_id=trigger_id, view=view)

    async def publish_view(self, user_id: str, view: dict[str, Any]) -> None:
        """Publish a person's Home tab (``views.publish``, a ``home`` view of at most 100 blocks).

        Raises:
            SlackFailure: Slack refused it (an invalid view, the Home tab off) or did not answer.
        """
        async with _calling("views.publish"):
            await self.client.views_publish(user_id=user_id, view=view)

    async def user(self, user_id: str) -> dict[str, Any]:
        """The ``user`` object of ``users.info`` (``tz``, ``profile.email``...; empty when absent).

        Raises:
            SlackFailure: Slack refused it (a missing scope, an unknown user) or did not answer.
        """
        async with _calling("users.info"):
            response = await self.client.users_info(user=user_id)
        user = response.get("user")
        return user if isinstance(user, dict) else {}

    async def group_members(self, group_id: str) -> list[str]:
        """A user group's member ids (``usergroups.users.list``, scope ``usergroups:read``).

        Raises:
            SlackFailure: Slack refused it or did not answer.
        """
        async with _calling("usergroups.users.list"):
            response = await self.client.usergroups_users_list(usergroup=group_id)
        return [str(user) for user in response.get("users") or []]

    async def permalink(self, channel: str, ts: str) -> str:
        """A message's permanent address (``chat.getPermalink``).

        Raises:
            SlackFailure: Slack refused it (no such message, no access) or did not answer.
        """
        async with _calling("chat.getPermalink"):
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        return str(response["permalink"])

    async def workspace_url(self) -> str:
        """The workspace's address, ending in ``/`` (``auth.test``).

        Raises:
            SlackFailure: Slack refused it or did not answer.
        """
        async with _calling("auth.test"):
            response = await self.client.auth_test()
        return str(response["url"]).rstrip("/") + "/"

    async def ephemeral(self, to: ReplyTo, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer one person only: through ``response_url`` when there is one, else postEphemeral,
        else (no channel, the bot not in it) their direct messages with the app.

        Raises:
            SlackFailure: Slack refused the ephemeral for another reason, or did not answer.
        """
        if to.response_url and is_slack_response_url(to.response_url, self.response_hosts):
            webhook = AsyncWebhookClient(to.response_url)
            try:
                webhook_response = await webhook.send(
                    text=defuse(text),
                    blocks=defuse(blocks),
                    response_type="ephemeral",
                    replace_original=False,
                )
                status: int | str = webhook_response.status_code
            except _WIRE_FAILURES as error:
                status = type(error).__name__
            if status == 200:
                return
            log.warning("response_url answered %s; falling back to chat.postEphemeral", status)
        try:
            await self.client.chat_postEphemeral(
                channel=to.channel_id, user=to.user_id, text=text, blocks=blocks, thread_ts=to.thread_ts
            )
            return
        except _WIRE_FAILURES as error:
            failure = _failure("chat.postEphemeral", error)
            if failure.reason not in CANNOT_POST and failure.reason not in _NO_EPHEMERAL:
                raise failure from error
            log.info(
                "ephemeral in %s refused (%s); answering in the app's DM",
                to.channel_id or "-",
                failure.reason,
            )
        # The channel is gone, the bot left it, or a modal's metadata named none: the answer still
        # reaches the person, in their direct messages with the app.
        try:
            await self.client.chat_postMessage(
                channel=to.user_id, text=text, blocks=blocks, unfurl_links=False
            )
        except _WIRE_FAILURES as error:
            log.warning(
                "could not answer %s at all: %s", to.user_id, _failure("chat.postMessage", error).reason
            )
