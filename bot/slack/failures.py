"""The one place unexpected errors end up, Bolt-free: a listener's error (through Bolt's error
handler, ``bot.slack.app``) and a worker's error on an inbox row (``bot.inbox``) are told alike."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from bot.errors import answer
from bot.slack.messenger import Messenger, ReplyTo, SlackFailure
from commands.errors import FlagopsError

log = logging.getLogger("flagops")

GENERIC_ERROR = (
    ":warning: Sorry, something went wrong on flagops' side (reference `{ref}`). "
    "Nothing was changed unless a thread reply says so; try again, or ask an admin to look up the reference."
)


async def handle_error(error: Exception, body: dict[str, Any], messenger: Messenger) -> None:
    """Tell the person about an error while handling ``body``.

    A :class:`FlagopsError` (a wrong command, a LaunchDarkly refusal, a channel the bot cannot post
    in) is shown in words (:func:`bot.errors.answer`). Anything else is a bug: logged with its
    traceback and a reference, and the user gets a generic apology with that reference. Never the
    exception text (it could hold a URL, a payload or a token).

    The answer goes to the person alone, as every answer does (``Messenger.ephemeral``: the
    payload's ``response_url`` on Slack's hosts, else an ephemeral, else their DM with the app).

    Only verified requests get here: the web front door answers 401 to anything whose signature
    fails or cannot be checked, before Bolt sees it.
    """
    if isinstance(error, FlagopsError):
        text = answer(error)
    else:
        ref = uuid.uuid4().hex[:8]
        log.error("unhandled error %s while handling %s", ref, describe(body), exc_info=error)
        text = GENERIC_ERROR.format(ref=ref)
    user, channel = user_and_channel(body)
    if not user:
        return
    url = body.get("response_url")
    reply = ReplyTo(channel or "", user, url if isinstance(url, str) else None)
    try:
        await messenger.ephemeral(reply, text)
    except SlackFailure as exc:
        log.warning("could not tell the user about error %s: %s", text[:40], exc.reason)


def user_and_channel(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The user and channel a payload names, whatever their shape (an id string or an object)."""

    def pick(flat: str, nested: str) -> str | None:
        value = body.get(flat) or body.get(nested)
        if isinstance(value, dict):
            value = value.get("id")
        return value if isinstance(value, str) and value else None

    return pick("user_id", "user"), pick("channel_id", "channel")


def describe(body: dict[str, Any]) -> str:
    """What was being handled, without the payload (which carries the legacy ``token`` field)."""
    kind = body.get("type") or ("slash_command" if "command" in body else "event")
    actions: list[dict[str, Any]] = body.get("actions") or [{}]
    action = actions[0].get("action_id") if isinstance(actions[0], dict) else None
    user, channel = user_and_channel(body)
    return f"{kind} command={body.get('command')} action={action} user={user} channel={channel}"
