"""Build the Bolt app: the signing secret, the Web API client, each feature's listeners, one error
handler.

``app.py`` only registers: the services are built once in ``bot.wiring`` and handed in; each
feature's listeners live in its own folder (``bot/<feature>/listeners.py``), registered by
``bot.slack.listeners``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import answer
from bot.slack import listeners
from bot.slack.messenger import Messenger, ReplyTo, SlackFailure
from bot.wiring import Services
from commands.errors import FlagopsError

log = logging.getLogger("flagops")

GENERIC_ERROR = (
    ":warning: Sorry, something went wrong on flagops' side (reference `{ref}`). "
    "Nothing was changed unless a thread reply says so; try again, or ask an admin to look up the reference."
)


Feature = Callable[[AsyncApp, Services], None]
"""The shape of a feature: ``register(app, services)`` adds its listeners to the app."""

FEATURES: list[Feature] = [listeners.register]
"""Each feature's ``register(app, deps)``, called in order by :func:`build_app`."""


def build_app(
    services: Services, *, slack_client: AsyncWebClient, features: list[Feature] | None = None
) -> AsyncApp:
    """Build the Bolt app and register every feature on it.

    Args:
        services: the bot's services (``bot.wiring.build_services``), shared by every listener.
        slack_client: the Web API client Bolt hands to listeners (the messenger's own).
        features: the features to register (default :data:`FEATURES`).

    Returns:
        The app. ``process_before_response=False``: Slack's HTTP request is answered as soon as a
        listener calls ``ack()``, and the listener goes on after.
    """
    settings = services.settings
    app = AsyncApp(
        name="flagops",
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # The client carries the token; passing both makes Bolt warn that it skips the token.
        client=slack_client,
        process_before_response=False,
        logger=logging.getLogger("flagops.bolt"),
    )

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        await handle_error(error, body, services.messenger)

    app.error(on_error)
    for feature in FEATURES if features is None else features:
        feature(app, services)
    return app


async def handle_error(error: Exception, body: dict[str, Any], messenger: Messenger) -> None:
    """The one place unexpected errors end up (Bolt calls it for any listener or middleware error).

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
        log.error("unhandled error %s while handling %s", ref, _describe(body), exc_info=error)
        text = GENERIC_ERROR.format(ref=ref)
    user, channel = _user_and_channel(body)
    if not user:
        return
    url = body.get("response_url")
    reply = ReplyTo(channel or "", user, url if isinstance(url, str) else None)
    try:
        await messenger.ephemeral(reply, text)
    except SlackFailure as exc:
        log.warning("could not tell the user about error %s: %s", text[:40], exc.reason)


def _user_and_channel(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The user and channel a payload names, whatever their shape (an id string or an object)."""

    def pick(flat: str, nested: str) -> str | None:
        value = body.get(flat) or body.get(nested)
        if isinstance(value, dict):
            value = value.get("id")
        return value if isinstance(value, str) and value else None

    return pick("user_id", "user"), pick("channel_id", "channel")


def _describe(body: dict[str, Any]) -> str:
    """What was being handled, without the payload (which carries the legacy ``token`` field)."""
    kind = body.get("type") or ("slash_command" if "command" in body else "event")
    actions: list[dict[str, Any]] = body.get("actions") or [{}]
    action = actions[0].get("action_id")
    user, channel = _user_and_channel(body)
    return f"{kind} command={body.get('command')} action={action} user={user} channel={channel}"
