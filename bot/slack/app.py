"""Build the Bolt app: the signing secret, the Web API client, each feature's listeners, one error
handler.

``app.py`` only registers: the services are built once in ``bot.wiring`` and handed in; each
feature's listeners live in its own folder (``bot/<feature>/listeners.py``), registered by
``bot.slack.listeners``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import listeners
from bot.slack.failures import GENERIC_ERROR, handle_error
from bot.slack.failures import describe as _describe
from bot.slack.failures import user_and_channel as _user_and_channel
from bot.wiring import Services

log = logging.getLogger("flagops")

__all__ = [
    "FEATURES",
    "GENERIC_ERROR",
    "Feature",
    "_describe",
    "_user_and_channel",
    "build_app",
    "handle_error",
]


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
        The app. ``process_before_response=True``: Slack's HTTP request is answered when the
        listener returns, and every listener returns right after its ``ack()`` (what follows runs
        in a task of its own: ``Inbox.accept``, ``Inbox.after_ack``).
    """
    settings = services.settings
    app = AsyncApp(
        name="flagops",
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # The client carries the token; passing both makes Bolt warn that it skips the token.
        client=slack_client,
        # Slack's request is answered when the listener returns: each acks and returns at once,
        # handing what follows to a task of its own (``Inbox.accept``, ``Inbox.after_ack``). With
        # False, Bolt would poll every 10 ms for the ack of each request in flight (a fifth of the
        # web process's CPU under a burst, bench/README.md).
        process_before_response=True,
        logger=logging.getLogger("flagops.bolt"),
    )

    async def on_error(error: Exception, body: dict[str, Any], ack: AsyncAck) -> BoltResponse | None:
        # Told in a task of its own (Slack is answered first); a listener that failed after its
        # ack still answers Slack with that ack (else Bolt would answer 500 and Slack would show
        # the person an error of its own on top of ours).
        services.inbox.after_ack(body, lambda: handle_error(error, body, services.messenger))
        acked = ack.response
        if acked is not None:
            return BoltResponse(status=acked.status, body=acked.body, headers=acked.headers)
        if body.get("type") == "event_callback":
            # An event is acked by Bolt after its listener returns: one that failed is still taken
            # (Slack would send it again, and the same bug would fail it again).
            return BoltResponse(status=200, body="")
        return None

    app.error(on_error)
    for feature in FEATURES if features is None else features:
        feature(app, services)
    return app
