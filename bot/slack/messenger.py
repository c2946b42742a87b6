"""The one place that sends messages to Slack.

Builders in ``bot.slack.blocks`` return ``(text, blocks)``; the change lifecycle decides what to say;
this module says it: cards and thread replies with ``chat.postMessage``, card updates with
``chat.update``, answers for one person through the payload's ``response_url`` (which works even
where the bot is not a member) or ``chat.postEphemeral``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
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


#: What a Slack Web API call may raise: Slack's refusal, or no answer at all. Code outside this
#: package catches these by this name, so it needs to know nothing of slack_sdk or aiohttp.
SLACK_FAILURES: tuple[type[Exception], ...] = (SlackApiError, aiohttp.ClientError)

# chat.postEphemeral's refusals that a direct message gets around (no channel; the user not in it).
_NO_EPHEMERAL = frozenset({"user_not_in_channel", "invalid_arguments", "no_channel"})


class CannotPost(FlagopsError):
    """Slack refused to let the bot post in a channel (``reason`` is Slack's error code)."""

    is_mrkdwn = True  # the channel is a mention built from its id

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
        """
        try:
            response = await self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False
            )
        except SlackApiError as error:
            reason = str(error.response.get("error", ""))
            if reason in CANNOT_POST:
                raise CannotPost(channel, reason) from error
            raise
        return str(response["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """Replace a message the bot posted (a card after a click)."""
        await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    async def ephemeral(self, to: ReplyTo, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer one person only: through ``response_url`` when there is one, else postEphemeral."""
        if to.response_url and is_slack_response_url(to.response_url, self.response_hosts):
            webhook = AsyncWebhookClient(to.response_url)
            webhook_response = await webhook.send(
                text=defuse(text), blocks=defuse(blocks), response_type="ephemeral", replace_original=False
            )
            if webhook_response.status_code == 200:
                return
            log.warning(
                "response_url answered %s; falling back to chat.postEphemeral", webhook_response.status_code
            )
        try:
            await self.client.chat_postEphemeral(
                channel=to.channel_id, user=to.user_id, text=text, blocks=blocks, thread_ts=to.thread_ts
            )
            return
        except SlackApiError as error:
            reason = str(error.response.get("error", ""))
            if reason not in CANNOT_POST and reason not in _NO_EPHEMERAL:
                raise
            log.info("ephemeral in %s refused (%s); answering in the app's DM", to.channel_id or "-", reason)
        # The channel is gone, the bot left it, or a modal's metadata named none: the answer still
        # reaches the person, in their direct messages with the app.
        try:
            await self.client.chat_postMessage(
                channel=to.user_id, text=text, blocks=blocks, unfurl_links=False
            )
        except SlackApiError as error:
            log.warning("could not answer %s at all: %s", to.user_id, error.response.get("error"))
