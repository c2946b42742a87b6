"""Socket Mode: the same Bolt app, reached over Slack's WebSocket instead of HTTP.

slack_sdk's aiohttp client does the protocol (``apps.connections.open`` with the app-level token,
``hello``, envelopes acked by ``envelope_id``, ``disconnect`` → a new URL and a new socket, pings).
This module adds what flagops needs on top:

- **One delivery, one handling.** Slack sends an envelope again (``retry_attempt`` > 0) when it saw
  no ack, typically across a reconnect. The payload's own identity (a command's or a click's
  ``trigger_id``, an event's ``event_id``) is remembered: a delivery seen before is acked and not
  run again, so a re-sent command makes one card and a re-sent click one Apply. (The lifecycle's
  compare-and-set would refuse a second Apply anyway; this also spares the second card and the
  "already being applied" answer.) The memory is per process; a retry that lands on another
  instance is stopped by the durable inbox (``bot.inbox``: the delivery's unique key makes it one
  row, acked and not run again), and a click by the compare-and-set.
- **Reconnects in the log.** Each close and error is logged with Slack's reason.
- Slack's Web API base (``SLACK_API_URL``) is used for ``apps.connections.open`` too, so the
  offline fake (``bot.offline.fake_socket_mode``) and the tests drive the real client.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings

log = logging.getLogger("flagops.socket_mode")

REMEMBERED_DELIVERIES = 10_000


def delivery_key(request: SocketModeRequest) -> str | None:
    """What identifies one delivery whatever envelope carries it: None when nothing does (an
    options request, which only reads)."""
    payload: dict[str, Any] = request.payload if isinstance(request.payload, dict) else {}
    if request.type == "events_api":
        event_id = payload.get("event_id")
        return f"event:{event_id}" if isinstance(event_id, str) and event_id else None
    trigger = payload.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        return f"{request.type}:{payload.get('type', 'command')}:{trigger}"
    return None


class FlagopsSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode adapter; a delivery sent again is acked once more and not run twice."""

    def __init__(self, app: AsyncApp, app_token: str, *, web_client: AsyncWebClient) -> None:
        super().__init__(app, app_token, web_client=web_client)
        self._seen: OrderedDict[str, None] = OrderedDict()

        # Reconnects are Socket Mode's most reported problem: say each state change in the log.
        async def on_close(message: Any) -> None:
            log.warning("Socket Mode connection closed (%s); reconnecting", getattr(message, "data", ""))

        async def on_error(message: Any) -> None:
            log.error("Socket Mode connection error: %s", getattr(message, "data", message))

        self.client.on_close_listeners.append(on_close)
        self.client.on_error_listeners.append(on_error)

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        key = delivery_key(req)
        if key is not None:
            if key in self._seen:
                log.info(
                    "Socket Mode: envelope %s (%s, retry %s) repeats a delivery already handled: acked only",
                    req.envelope_id,
                    req.type,
                    req.retry_attempt,
                )
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
                return
            self._seen[key] = None
            while len(self._seen) > REMEMBERED_DELIVERIES:
                self._seen.popitem(last=False)
        # As Bolt's adapter does, except that a delivery not acked (an error before ack(), a
        # listener Bolt did not find) is forgotten again: Slack's retry of it must run.
        start = time.time()
        acked = False
        try:
            response = await run_async_bolt_app(self.app, req)
            acked = response.status == 200
            await send_async_response(client, req, response, start)
        finally:
            if key is not None and not acked:
                self._seen.pop(key, None)

    @property
    def connected(self) -> bool:
        """Whether a socket is open now (for the health answer; reconnects are brief)."""
        session = self.client.current_session
        return session is not None and not session.closed


def socket_mode_handler(app: AsyncApp, settings: Settings) -> FlagopsSocketModeHandler:
    """The Socket Mode handler for ``app`` (``SLACK_APP_TOKEN`` must be set); connect it with
    ``await handler.connect_async()``, close it with ``await handler.close_async()``."""
    assert settings.slack_app_token is not None
    web_client = AsyncWebClient(base_url=settings.slack_api_base or AsyncWebClient.BASE_URL)
    return FlagopsSocketModeHandler(app, settings.slack_app_token.get_secret_value(), web_client=web_client)
