"""Requests as Slack sends them (signed slash commands and button clicks), and a driver that sends
them to a served bot and waits until its background work is done.

Used by the offline console and the end-to-end tests, so both drive the bot exactly as Slack does:
form-encoded bodies, ``X-Slack-Signature`` = ``v0=HMAC_SHA256(secret, "v0:{ts}:{body}")`` made with
slack_sdk's ``SignatureVerifier``, and a ``response_url`` that points at the fake Slack.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.inbox.service import BACKGROUND_TASK_PREFIX
from bot.offline.fake_slack import FakeSlack, Message
from bot.slack.server import EVENTS_PATH, SERVER_TASK_PREFIX

TEAM_ID = "T_DEMO"
API_APP_ID = "A_FLAGOPS"


@dataclass(frozen=True)
class SlackUser:
    """Who is typing or clicking."""

    id: str
    name: str


@dataclass(frozen=True)
class SignedRequest:
    """A request body and the headers Slack would send with it."""

    body: bytes
    headers: dict[str, str]


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request-signing headers for ``body``.

    Args:
        secret: the app's signing secret.
        body: the raw request body.
        timestamp: the request time in epoch seconds (now by default; an old one makes a stale request).

    Returns:
        ``X-Slack-Request-Timestamp``, ``X-Slack-Signature`` and the form content type.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None  # only None without a timestamp
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }


def slash_command_body(
    *,
    command: str,
    text: str,
    user: SlackUser,
    channel_id: str,
    response_url: str,
    channel_name: str | None = None,
    trigger_id: str | None = None,
) -> bytes:
    """The form-encoded body of a slash command.

    Args:
        command: e.g. ``/flag``.
        text: what follows the command.
        user: who typed it.
        channel_id: where.
        response_url: where ``respond()`` posts.
        channel_name: the channel's name (derived from the id by default).
        trigger_id: the trigger for opening a modal (a fresh one by default).

    Returns:
        The body.
    """
    fields = {
        "token": "legacy-verification-token",  # Slack still sends it; apps must ignore it
        "team_id": TEAM_ID,
        "team_domain": "demo",
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id.lower(),
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return urlencode(fields).encode()


def block_actions_payload(
    *,
    user: SlackUser,
    channel_id: str,
    message: Message,
    button: dict[str, Any],
    response_url: str,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """The payload of a button click on a message.

    Args:
        user: who clicked.
        channel_id: the message's channel.
        message: the message clicked on.
        button: the button element (with its ``block_id``), as
            :func:`bot.offline.fake_slack.message_buttons` gives it.
        response_url: where ``respond()`` posts.
        trigger_id: the trigger for opening a modal (a fresh one by default).

    Returns:
        The payload (send it with :func:`interaction_body`).
    """
    action: dict[str, Any] = {
        "type": "button",
        "action_id": button.get("action_id"),
        "block_id": button.get("block_id"),
        "text": button.get("text"),
        "action_ts": f"{time.time():.6f}",
    }
    if "value" in button:
        action["value"] = button["value"]
    if "style" in button:
        action["style"] = button["style"]
    slack_message: dict[str, Any] = {
        "type": "message",
        "user": message.user,
        "ts": message.ts,
        "text": message.text,
        "blocks": message.blocks,
    }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": channel_id,
        "is_ephemeral": False,
    }
    if message.thread_ts:
        slack_message["thread_ts"] = message.thread_ts
        container["thread_ts"] = message.thread_ts
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
        "api_app_id": API_APP_ID,
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": slack_message,
        "response_url": response_url,
        "actions": [action],
        "state": {"values": {}},
    }


def interaction_body(payload: dict[str, Any]) -> bytes:
    """Interactivity payloads travel as one form field, ``payload``, holding JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def new_trigger_id() -> str:
    """A fresh trigger id, shaped like Slack's."""
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


def find_button(message: Message, which: str | int) -> dict[str, Any]:
    """A button of ``message`` by its text (case-insensitive) or its 1-based position.

    Raises:
        LookupError: no such button (the message says which buttons it has).
    """
    buttons = message.buttons
    if isinstance(which, int):
        if 1 <= which <= len(buttons):
            return buttons[which - 1]
    else:
        for button in buttons:
            if str(button.get("text", {}).get("text", "")).strip().lower() == which.strip().lower():
                return button
    names = ", ".join(f"[{i}] {b.get('text', {}).get('text')}" for i, b in enumerate(buttons, 1)) or "none"
    raise LookupError(f"no button {which!r} on the message (buttons: {names})")


@dataclass
class SlackDriver:
    """Drives a served bot as Slack does; ``await idle()`` waits for its background work.

    The bot must be served in this event loop (see :func:`bot.slack.server.serve_in_loop`) for
    :meth:`idle` to see its work: it waits until no task is running other than the servers' own
    and those that existed when the driver started, and the fake Slack has no request in flight.

    Args:
        bot_url: the bot's base URL.
        secret: the signing secret the bot checks.
        slack: the fake Slack the bot talks to (and that hands out response URLs).
        command_name: the slash command, e.g. ``/flag``.
        http: the HTTP client to send with.
    """

    bot_url: str
    secret: str
    slack: FakeSlack
    command_name: str
    http: httpx.AsyncClient
    baseline: set[asyncio.Task[Any]] = field(default_factory=set)
    sent: list[SignedRequest] = field(default_factory=list)
    users: dict[str, SlackUser] = field(default_factory=dict)
    transport: Callable[[SignedRequest], Awaitable[httpx.Response]] | None = None
    """How requests reach the bot: HTTP to ``bot_url`` when None, else this (Socket Mode)."""
    background: Callable[[asyncio.Task[Any]], bool] | None = None
    """Tasks that run for as long as a connection does (Socket Mode's), never "work" for idle."""
    waiting: Callable[[], bool] | None = None
    """Whether the bot holds work accepted but not started (rows its listeners left to the inbox's
    loop: ``Inbox.settling``): :meth:`idle` waits for it too."""

    def mark_baseline(self) -> None:
        """Remember the tasks running now (servers) as not being "work" for :meth:`idle`."""
        self.baseline = set(asyncio.all_tasks())

    def user(self, user_id: str) -> SlackUser:
        """The user with this id (named after the fake Slack's member, or the id itself)."""
        if user_id not in self.users:
            member = self.slack.user(user_id)
            self.users[user_id] = SlackUser(user_id, member.name if member else user_id.lower())
        return self.users[user_id]

    async def send(self, request: SignedRequest) -> httpx.Response:
        """POST a prepared request to the bot's events URL (e.g. again, to replay it), or hand it to
        the transport (Socket Mode: the same payload in an envelope; the answer is the ack)."""
        self.sent.append(request)
        if self.transport is not None:
            return await self.transport(request)
        return await self.http.post(self.bot_url + EVENTS_PATH, content=request.body, headers=request.headers)

    def command_request(
        self, text: str, *, user: str, channel: str, timestamp: int | None = None, secret: str | None = None
    ) -> SignedRequest:
        """A signed slash command (``secret`` / ``timestamp`` let tests forge or age it).

        Args:
            text: the whole line, with or without the command name in front.
            user: the user id typing it.
            channel: the channel id.
            timestamp: the signing time (now by default).
            secret: the secret to sign with (the bot's by default).

        Returns:
            The request, ready for :meth:`send`.
        """
        text = text.strip()
        if text.split(" ", 1)[0] == self.command_name:
            text = text[len(self.command_name) :].strip()
        body = slash_command_body(
            command=self.command_name,
            text=text,
            user=self.user(user),
            channel_id=channel,
            response_url=self.slack.new_response_url(channel, user),
        )
        return SignedRequest(body, sign(secret or self.secret, body, timestamp=timestamp))

    async def command(self, text: str, *, user: str, channel: str) -> httpx.Response:
        """Type a slash command; returns the bot's HTTP answer (the ack)."""
        return await self.send(self.command_request(text, user=user, channel=channel))

    def click_request(
        self,
        which: str | int,
        *,
        user: str,
        message: Message | None = None,
        channel: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A signed click on a button of ``message`` (default: the last message with buttons).

        Args:
            which: the button's text or 1-based position.
            user: the user id clicking.
            message: the message (default: the latest one with buttons, in ``channel`` if given).
            channel: where to look for the latest card.
            timestamp: the signing time (now by default).
            secret: the secret to sign with (the bot's by default).

        Returns:
            The request, ready for :meth:`send`.

        Raises:
            LookupError: there is no such message or button.
        """
        target = message or self.slack.last_card(channel)
        if target is None:
            raise LookupError("there is no message with buttons to click")
        payload = block_actions_payload(
            user=self.user(user),
            channel_id=target.channel,
            message=target,
            button=find_button(target, which),
            response_url=self.slack.new_response_url(target.channel, user, message_ts=target.ts),
        )
        body = interaction_body(payload)
        return SignedRequest(body, sign(secret or self.secret, body, timestamp=timestamp))

    async def click(
        self, which: str | int, *, user: str, message: Message | None = None, channel: str | None = None
    ) -> httpx.Response:
        """Click a button; returns the bot's HTTP answer (the ack)."""
        return await self.send(self.click_request(which, user=user, message=message, channel=channel))

    async def idle(
        self, *, timeout: float = 15.0, ignore: Callable[[asyncio.Task[Any]], bool] | None = None
    ) -> None:
        """Wait until the bot has finished everything it started.

        Args:
            timeout: seconds to wait at most.
            ignore: tasks to leave out (e.g. a scheduler's long-running loop).

        Raises:
            TimeoutError: work is still running after ``timeout`` (its tasks are named).
        """
        deadline = asyncio.get_running_loop().time() + timeout
        quiet_checks = 0
        while True:
            busy = self._busy(ignore)
            waiting = self.waiting is not None and self.waiting()
            quiet_checks = 0 if busy or waiting or self.slack.in_flight else quiet_checks + 1
            # Twice quiet in a row: a finishing task may schedule a callback that starts another.
            if quiet_checks >= 2:
                return
            if asyncio.get_running_loop().time() > deadline:
                names = ", ".join(sorted(t.get_name() + ":" + repr(t.get_coro())[:80] for t in busy))
                what = names or ("inbox rows not taken yet" if waiting else "fake Slack requests")
                raise TimeoutError(f"the bot is still busy after {timeout}s: {what}")
            await asyncio.sleep(0.005)

    def _busy(self, ignore: Callable[[asyncio.Task[Any]], bool] | None) -> Collection[asyncio.Task[Any]]:
        current = asyncio.current_task()
        return [
            t
            for t in asyncio.all_tasks()
            if t is not current
            and t not in self.baseline
            and not t.done()
            and not t.get_name().startswith((SERVER_TASK_PREFIX, BACKGROUND_TASK_PREFIX))
            and not (ignore and ignore(t))
            and not (self.background and self.background(t))
        ]


# --- modals, message shortcuts and options requests (approvals, accounts, message actions) --------


def view_submission_payload(
    *, user: SlackUser, view: dict[str, Any], values: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    """The payload of a modal's submission.

    Args:
        user: who submitted.
        view: the view as ``views.open`` stored it (its ``id``, ``callback_id``, ``private_metadata``).
        values: ``state.values``: block id → action id → ``{"type": ..., "value" | "selected_option": ...}``.

    Returns:
        The payload (send it with :func:`interaction_body`).
    """
    submitted = {**view, "state": {"values": values}}
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
        "api_app_id": API_APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": new_trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
    }


def message_shortcut_payload(
    *, user: SlackUser, callback_id: str, channel_id: str, message: Message, response_url: str
) -> dict[str, Any]:
    """The payload of a message shortcut (a message action) run on ``message``."""
    slack_message: dict[str, Any] = {
        "type": "message",
        "user": message.user,
        "ts": message.ts,
        "text": message.text,
    }
    if message.blocks:
        slack_message["blocks"] = message.blocks
    if message.thread_ts:
        slack_message["thread_ts"] = message.thread_ts
    return {
        "type": "message_action",
        "callback_id": callback_id,
        "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
        "api_app_id": API_APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": new_trigger_id(),
        "action_ts": f"{time.time():.6f}",
        "message_ts": message.ts,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": slack_message,
        "response_url": response_url,
        "is_enterprise_install": False,
    }


def block_suggestion_payload(
    *, user: SlackUser, view: dict[str, Any], block_id: str, action_id: str, value: str
) -> dict[str, Any]:
    """The payload of an ``external_select`` options request typed in a modal."""
    return {
        "type": "block_suggestion",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
        "api_app_id": API_APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": view.get("id")},
        "view": view,
        "block_id": block_id,
        "action_id": action_id,
        "value": value,
        "action_ts": f"{time.time():.6f}",
    }


def signed_interaction(secret: str, payload: dict[str, Any]) -> SignedRequest:
    """An interactivity payload, form-encoded and signed."""
    body = interaction_body(payload)
    return SignedRequest(body, sign(secret, body))


def app_home_opened_payload(user_id: str, *, event_id: str | None = None) -> dict[str, Any]:
    """The Events API callback Slack sends when a person opens the app's Home tab."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": API_APP_ID,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D_{user_id}",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
    }


def signed_event(secret: str, payload: dict[str, Any]) -> SignedRequest:
    """An Events API callback: a JSON body (not form-encoded), signed like every request."""
    body = json.dumps(payload).encode()
    headers = {**sign(secret, body), "Content-Type": "application/json"}
    return SignedRequest(body, headers)


def home_click_payload(
    *, user: SlackUser, view: dict[str, Any], button: dict[str, Any], block_id: str | None = None
) -> dict[str, Any]:
    """A button click in the Home tab: from a view, with no channel, message or ``response_url``."""
    action: dict[str, Any] = {
        "type": "button",
        "action_id": button.get("action_id"),
        "block_id": block_id or button.get("block_id") or "home",
        "text": button.get("text"),
        "action_ts": f"{time.time():.6f}",
    }
    if "value" in button:
        action["value"] = button["value"]
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "demo"},
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
        "api_app_id": API_APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": view.get("id", "V_HOME")},
        "trigger_id": new_trigger_id(),
        "view": view,
        "actions": [action],
    }
