"""The offline console: the real bot against the LaunchDarkly sandbox and a fake Slack, on stdin.

``python -m bot console`` serves, in one process and one event loop, on loopback ports: the sandbox
(the demo project), the fake Slack Web API, and the bot itself (the same Bolt app as production,
with a fresh SQLite database). Each line typed becomes what Slack would send: ``/flag ...`` a signed
slash command, ``click N`` a signed click on the last card's N-th button. After each step the console
waits until the bot is idle, then prints what appeared in Slack as text. It reads standard input,
so it can be scripted::

    printf '/flag on new-checkout test\\nclick 1\\n' | python -m bot console

:func:`offline_stack` (the three servers and a driver) is shared with the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from bot.config import OAUTH_CALLBACK_PATH, Settings, load_settings
from bot.launchdarkly.client import tls_context
from bot.launchdarkly.sandbox import SandboxState, create_app
from bot.offline.fake_slack import Ephemeral, FakeSlack, Message
from bot.offline.fake_socket_mode import FakeSocketMode, envelope_of, is_connection_task
from bot.offline.payloads import SignedRequest, SlackDriver
from bot.slack.app import Feature
from bot.slack.server import Runtime, create_web_app, free_port, serve_in_loop
from bot.slack.socket_mode import socket_mode_handler
from bot.subscriptions.webhook import setup_webhook

CONSOLE_APP_TOKEN = "xapp-flagops-console"
# Encrypts the offline bot's linked tokens; throwaway: the offline database lives in a temporary folder.
OFFLINE_SECRET_KEY = "flagops-offline-throwaway-key"  # the offline Socket Mode's app-level token
CONSOLE_USER = "U_ALICE"
CONSOLE_CHANNEL = "C_RELEASES"
CONSOLE_USERS = ("U_ALICE", "U_BOB", "U_CAROL", "U_TARA", "U_PAT")  # the demo's Slack users
CONSOLE_CHANNEL_NAME = "releases"

HELP = """Type what you would type in Slack, or a console command:
  /flag ...        run a flagops command as the current user in #releases (try: /flag help)
  click N          click the N-th button of the latest card (or: click Apply)
  click Connect    open a Connect LaunchDarkly button in your browser (signed in as the current user)
  as NAME          act as another user: alice, bob (writers), carol (a reader), tara (targets in
                   test only) or pat (a custom role and a team)
  help             this help
  quit             leave (so does end of input)"""


@dataclass
class OfflineStack:
    """The sandbox, the fake Slack and the bot, served in this event loop, and a driver for them."""

    settings: Settings
    sandbox: SandboxState
    sandbox_url: str
    slack: FakeSlack
    runtime: Runtime
    bot_url: str
    driver: SlackDriver
    socket: FakeSocketMode | None = None
    """Slack's Socket Mode, when the stack runs over it (``socket_mode=True``)."""


@contextlib.asynccontextmanager
async def offline_stack(
    *,
    database_url: str | None = None,
    sandbox: SandboxState | None = None,
    slack: FakeSlack | None = None,
    features: list[Feature] | None = None,
    socket_mode: bool = False,
    oauth: bool = False,
    webhooks: bool = False,
    **settings: Any,
) -> AsyncIterator[OfflineStack]:
    """Serve the sandbox, a fake Slack and the bot on loopback, in the current event loop.

    Args:
        database_url: the bot's database (default: a SQLite file in a temporary directory).
        sandbox: the sandbox state (default: the demo project, with the console's token).
        slack: the fake Slack (default: a new one with the demo users).
        features: the bot features to register (default: all).
        socket_mode: reach the bot over Slack's Socket Mode (a fake of it on loopback, and the
            bot's real Socket Mode client) instead of signed HTTP requests.
        oauth: people connect with LaunchDarkly's OAuth: an OAuth client is registered in the
            sandbox for the bot's callback, and a throwaway ``FLAGOPS_SECRET_KEY`` is set.
        webhooks: the bot's public URL is its loopback address and ``webhook-setup`` runs (with
            the sandbox's admin token), so the sandbox signs and delivers each change to the bot.
        **settings: settings overrides (e.g. ``flagops_confirm_ttl``).

    Yields:
        The running stack; everything stops and closes on exit.
    """
    with tempfile.TemporaryDirectory(prefix="flagops-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'flagops.sqlite3'}"
        if socket_mode:
            settings.setdefault("slack_app_token", CONSOLE_APP_TOKEN)
        base = load_settings("console", database_url=url, **settings)
        state = sandbox or SandboxState.demo(token=base.ld_api_token.get_secret_value())
        fake = slack or FakeSlack(tokens={base.slack_bot_token.get_secret_value()})
        fake.add_channel(CONSOLE_CHANNEL, CONSOLE_CHANNEL_NAME)
        async with contextlib.AsyncExitStack() as servers:
            sandbox_url = await servers.enter_async_context(serve_in_loop(create_app(state)))
            slack_url = await servers.enter_async_context(serve_in_loop(fake.app))
            fake.base_url = slack_url
            bot_port = free_port()
            if oauth:
                bot_base = f"http://127.0.0.1:{bot_port}"
                client = state.oauth.register(
                    "flagops (offline)",
                    f"{bot_base}{OAUTH_CALLBACK_PATH}",
                    "the console's bot",
                    state.clock(),
                )
                settings.setdefault("ld_oauth_client_id", client.client_id)
                settings.setdefault("ld_oauth_client_secret", client.secret)
                settings.setdefault("flagops_public_url", bot_base)
                settings.setdefault("flagops_secret_key", OFFLINE_SECRET_KEY)
            if webhooks:
                settings.setdefault("flagops_public_url", f"http://127.0.0.1:{bot_port}")
                settings.setdefault("flagops_secret_key", OFFLINE_SECRET_KEY)
            socket = None
            if socket_mode:
                socket = fake.socket_mode = FakeSocketMode()
                await servers.enter_async_context(socket.serving())
            final = load_settings(
                "console",
                database_url=url,
                ld_base_url=sandbox_url,
                slack_api_url=f"{slack_url}/api",
                **settings,
            )
            runtime = await Runtime.open(final, features=features)
            if webhooks:
                await setup_webhook(
                    final, runtime.services.subscriptions.store, runtime.ld, SecretStr(state.admin_token)
                )
            try:
                async with (
                    serve_in_loop(create_web_app(final, runtime=runtime), port=bot_port) as bot_url,
                    httpx.AsyncClient(timeout=30, verify=tls_context()) as http,
                    _over_socket(socket, runtime, final) as transport,
                ):
                    driver = SlackDriver(
                        bot_url=bot_url,
                        secret=final.slack_signing_secret.get_secret_value(),
                        slack=fake,
                        command_name=final.flagops_command,
                        http=http,
                        transport=transport,
                        background=is_connection_task if socket is not None else None,
                        waiting=lambda: runtime.services.inbox.settling,
                    )
                    driver.mark_baseline()
                    yield OfflineStack(final, state, sandbox_url, fake, runtime, bot_url, driver, socket)
            finally:
                await runtime.close()


@contextlib.asynccontextmanager
async def _over_socket(
    socket: FakeSocketMode | None, runtime: Runtime, settings: Settings
) -> AsyncIterator[Callable[[SignedRequest], Awaitable[httpx.Response]] | None]:
    """Connect the bot's Socket Mode client to ``socket`` and yield a transport that delivers
    each request as Slack would over it (None: no socket, requests go over HTTP)."""
    if socket is None:
        yield None
        return
    handler = socket_mode_handler(runtime.bolt, settings)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await socket.wait_for_hellos(1)

        async def deliver(request: SignedRequest) -> httpx.Response:
            kind, payload = envelope_of(request.body)
            answer = (await socket.deliver(kind, payload)).get("payload")
            return httpx.Response(200, json=answer) if answer else httpx.Response(200)

        yield deliver
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


# --- rendering Slack messages as text ---------------------------------------------------------------

_USER = re.compile(r"<@([A-Z0-9_]+)(?:\|([^>]+))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^>]+)>")
_CHANNEL = re.compile(r"<#([A-Z0-9_]+)(?:\|([^>]+))?>")


def mrkdwn_to_text(text: str, names: dict[str, str] | None = None) -> str:
    """Slack mrkdwn as a terminal shows it: mentions as ``@name``, links as ``label (url)``.

    Args:
        text: the mrkdwn.
        names: user ids to names, for mentions without a label.

    Returns:
        Plain text (emphasis marks are kept: they read fine).
    """
    known = names or {}
    text = _USER.sub(lambda m: "@" + (m[2] or known.get(m[1], m[1])), text)
    text = _CHANNEL.sub(lambda m: "#" + (m[2] or m[1]), text)
    text = _LINK.sub(lambda m: f"{m[2]} ({m[1]})", text)
    text = _BARE_LINK.sub(lambda m: m[1], text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        if obj.get("type") == "image":
            return f"[{obj.get('alt_text', 'image')}]"
        return str(obj.get("text", ""))
    return str(obj or "")


def render_blocks(blocks: list[dict[str, Any]], names: dict[str, str] | None = None) -> list[str]:
    """Block Kit blocks as lines of text; buttons numbered in message order: ``[1] Apply  [2] Cancel``.

    Args:
        blocks: the blocks.
        names: user ids to names, for mentions.

    Returns:
        The lines.
    """
    lines: list[str] = []
    number = 0

    def label(button: dict[str, Any]) -> str:
        nonlocal number
        number += 1
        return f"[{number}] {_text_of(button.get('text'))}"

    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {_text_of(block.get('text'))} ==")
        elif kind == "section":
            if block.get("text"):
                lines.extend(mrkdwn_to_text(_text_of(block["text"]), names).splitlines())
            for fld in block.get("fields") or []:
                lines.append("  " + mrkdwn_to_text(_text_of(fld), names).replace("\n", " "))
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":
                lines.append(label(accessory))
        elif kind == "context":
            parts = [mrkdwn_to_text(_text_of(e), names) for e in block.get("elements") or []]
            lines.extend("  · " + line for line in " ".join(parts).splitlines())
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            labels = [label(e) for e in block.get("elements") or [] if e.get("type") == "button"]
            if labels:
                lines.append("  ".join(labels))
        elif kind == "rich_text":
            lines.append(_rich_text(block))
        else:
            lines.append(f"({kind} block)")
    return lines


def _rich_text(block: dict[str, Any]) -> str:
    def walk(node: Any) -> str:
        if isinstance(node, dict):
            if "text" in node and isinstance(node["text"], str):
                return node["text"]
            return "".join(walk(child) for child in node.get("elements") or [])
        return ""

    return walk(block)


def render_message(message: Message | Ephemeral, names: dict[str, str] | None = None) -> list[str]:
    """A message as text: its blocks when it has any, else its text."""
    if message.blocks:
        return render_blocks(message.blocks, names)
    return mrkdwn_to_text(message.text, names).splitlines() or [""]


@dataclass
class _Seen:
    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    ephemerals: int = 0


class Console:
    """Reads lines, drives the stack, prints what changed in Slack."""

    def __init__(self, stack: OfflineStack, out: TextIO) -> None:
        self.stack = stack
        self.out = out
        self.user = CONSOLE_USER
        self.channel = CONSOLE_CHANNEL
        self._seen = _Seen()

    def names(self) -> dict[str, str]:
        """User ids to names, for rendering mentions."""
        ids = {m.user for m in self.stack.slack.all_messages()} | {*CONSOLE_USERS, self.user}
        return {uid: user.name for uid in ids if (user := self.stack.slack.user(uid)) is not None}

    def say(self, text: str = "") -> None:
        """Print a line to the console's output."""
        print(text, file=self.out, flush=True)

    async def handle(self, line: str) -> bool:
        """Run one input line. Returns False when the console should stop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        if word in {"quit", "exit"}:
            return False
        if word == "help":
            self.say(HELP)
        elif word == "as":
            self._switch_user(rest.strip())
        elif word == "click":
            await self._click(rest.strip())
        elif word == self.stack.settings.flagops_command:
            self.say(f"> {line}")
            answer = await self.stack.driver.command(line, user=self.user, channel=self.channel)
            await self._after(answer)
        elif word.startswith("/"):
            self.say(f"Unknown command {word}: flagops answers {self.stack.settings.flagops_command}.")
        else:
            self.say(f"Not understood: {line!r}. Type help.")
        return True

    def _switch_user(self, name: str) -> None:
        wanted = name.lstrip("@").lower()
        for uid in CONSOLE_USERS:
            user = self.stack.slack.user(uid)
            if user is not None and wanted in {user.name, uid.lower()}:
                self.user = uid
                self.say(f"You are now @{user.name}.")
                return
        self.say("Unknown user: try alice, bob, carol, tara or pat.")

    async def _click(self, which: str) -> None:
        if not which:
            self.say("Click which button? e.g. click 1")
            return
        link = self._link_button(which)
        if link is not None:
            await self._open_in_browser(link)
            return
        target: str | int = int(which) if which.isdigit() else which
        try:
            request = self.stack.driver.click_request(target, user=self.user)
        except LookupError as exc:
            self.say(str(exc))
            return
        self.say(f"> click {which}")
        await self._after(await self.stack.driver.send(request))

    def _link_button(self, which: str) -> str | None:
        """The URL of a link button (Connect LaunchDarkly) in the user's own answers, by its text."""
        wanted = which.lower()
        for ephemeral in reversed(self.stack.slack.ephemerals(self.user)):
            for block in ephemeral.blocks:
                for element in block.get("elements") or []:
                    label = str((element.get("text") or {}).get("text", "")).lower()
                    if element.get("url") and wanted and label.startswith(wanted):
                        return str(element["url"])
        return None

    async def _open_in_browser(self, url: str) -> None:
        """What a browser does with a link button: LaunchDarkly's sign-in (as the console user),
        then the redirect back to the bot; the page's words are printed."""
        user = self.stack.slack.user(self.user)
        email = user.email if user is not None else None
        self.say(f"> click (opens your browser{f', signed in to LaunchDarkly as {email}' if email else ''})")
        if email is None:
            self.say("(this user has no email to sign in with)")
            return
        separator = "&" if "?" in url else "?"
        page = await self.stack.driver.http.get(
            f"{url}{separator}{urlencode({'login_as': email})}", follow_redirects=True
        )
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<title>.*?</title>", "", page.text, flags=re.S))
        self.say("(browser) " + " ".join(html.unescape(text).split()))
        await self.stack.driver.idle(timeout=60)
        self.print_new()

    async def _after(self, answer: httpx.Response) -> None:
        if answer.status_code != 200:
            self.say(f"(the bot answered HTTP {answer.status_code})")
        if answer.content and answer.headers.get("content-type", "").startswith("application/json"):
            self._print_ack(answer.json())
        await self.stack.driver.idle(timeout=60)
        self.print_new()

    def _print_ack(self, body: Any) -> None:
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            self.say("(only you can see this)")
            for line in render_message(
                Ephemeral(self.channel, self.user, body.get("text", ""), body.get("blocks") or [])
            ):
                self.say("  " + line)

    def print_new(self) -> None:
        """Print messages posted or edited since the last call, and new ephemerals for the user."""
        names = self.names()
        slack = self.stack.slack
        for message in slack.all_messages():
            key = (message.channel, message.ts)
            if self._seen.messages.get(key) == message.edits:
                continue
            edited = key in self._seen.messages
            self._seen.messages[key] = message.edits
            author = names.get(message.user, message.user)
            if message.thread_ts:
                self.say(f"    ↳ @{author} in the thread:")
                for line in render_message(message, names):
                    self.say("      " + line)
            else:
                self.say(f"#{self._channel_name(message.channel)} @{author}{' (updated)' if edited else ''}:")
                for line in render_message(message, names):
                    self.say("  " + line)
        ephemerals = slack.ephemerals()
        for ephemeral in ephemerals[self._seen.ephemerals :]:
            who = names.get(ephemeral.user, ephemeral.user)
            self.say(f"(only @{who} can see this)")
            for line in render_message(ephemeral, names):
                self.say("  " + line)
        self._seen.ephemerals = len(ephemerals)

    def _channel_name(self, channel: str) -> str:
        return CONSOLE_CHANNEL_NAME if channel == CONSOLE_CHANNEL else channel.lower()


async def console_session(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """Run the console until ``quit`` or end of input.

    Args:
        settings: console settings (from ``load_settings("console")``; only overrides carry over).
        stdin: where lines come from.
        stdout: where Slack's side is printed.

    Returns:
        The exit status (0).
    """
    async with offline_stack(
        flagops_command=settings.flagops_command,
        flagops_confirm_ttl=settings.flagops_confirm_ttl,
        oauth=True,  # `as bob`, Connect, Approve and apply: approvals between people, offline
    ) as stack:
        console = Console(stack, stdout)
        console.say(
            f"flagops offline console: a LaunchDarkly sandbox (project {stack.settings.ld_project}: "
            "environments test and production; production requires approval) and a fake Slack."
        )
        console.say(
            f"You are @alice in #{CONSOLE_CHANNEL_NAME}. Type help, or try: {settings.flagops_command} help"
        )
        while True:
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            if not await console.handle(line):
                break
    return 0


def run_console(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """``python -m bot console``: run :func:`console_session` in a new event loop.

    Returns:
        The exit status.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(console_session(settings, stdin, stdout))
