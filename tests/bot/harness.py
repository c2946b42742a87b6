"""Drive the whole bot as Slack does, errbot-style::

    bot = await Harness.start(database_url=...)
    await bot.command("/flag on new-checkout test", user="U_ALICE", channel="C_RELEASES")
    await bot.idle()
    await bot.click("Apply", user="U_ALICE")
    await bot.idle()
    bot.card().text, bot.thread(), bot.ld_patches()
    await bot.stop()

Everything is real and on loopback: the LaunchDarkly sandbox over HTTP, the fake Slack Web API
(``SLACK_API_URL``), and the bot's ASGI app under uvicorn with its store (SQLite in a temporary
directory, or Postgres). Requests are form-encoded and signed with slack_sdk's ``SignatureVerifier``.
All three servers run in the test's event loop, so :meth:`Harness.idle` can wait for the bot's
background work (what listeners hand to tasks after the ack).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.launchdarkly.sandbox import SandboxState
from bot.offline.console import CONSOLE_CHANNEL, OfflineStack, offline_stack
from bot.offline.fake_slack import FakeSlack, Message
from bot.offline.payloads import SignedRequest, SlackDriver, block_actions_payload, signed_interaction
from bot.persistence.store import Store
from bot.slack.app import Feature

ALICE, BOB, CAROL = "U_ALICE", "U_BOB", "U_CAROL"
RELEASES = CONSOLE_CHANNEL
STALE_SECONDS = 6 * 60  # Slack's (and Bolt's) replay window is 5 minutes


@dataclass
class Harness:
    """One running bot instance with its sandbox and fake Slack (see the module docstring)."""

    stack: OfflineStack
    _exit: contextlib.AsyncExitStack

    @classmethod
    async def start(
        cls,
        *,
        database_url: str | None = None,
        sandbox: SandboxState | None = None,
        slack: FakeSlack | None = None,
        features: list[Feature] | None = None,
        **settings: Any,
    ) -> Harness:
        """Start the sandbox, the fake Slack and the bot.

        Args:
            database_url: the bot's database (default: SQLite in a temporary directory).
            sandbox: a sandbox state to share (two instances racing share one LaunchDarkly).
            slack: a fake Slack to share (two instances share one workspace).
            features: bot features to register (default: all).
            **settings: settings overrides, e.g. ``flagops_confirm_ttl=1``.

        Returns:
            The running harness; ``await harness.stop()`` when done.
        """
        exit_stack = contextlib.AsyncExitStack()
        settings.setdefault("flagops_scheduler", "off")
        # No test waits out LaunchDarkly's 429s for long; it keeps the settle window of unknown
        # outcomes (LD_TIMEOUT + this, at least) short.
        settings.setdefault("ld_max_rate_limit_wait", 1.0)
        # The sandbox answers in milliseconds: a short timeout keeps an unknown outcome's settle
        # window (at least LD_TIMEOUT + the rate-limit wait) at seconds, not the production ten.
        settings.setdefault("ld_timeout", 3.0)
        settings.setdefault("flagops_settle_window", 1.0)
        stack = await exit_stack.enter_async_context(
            offline_stack(
                database_url=database_url, sandbox=sandbox, slack=slack, features=features, **settings
            )
        )
        return cls(stack, exit_stack)

    async def stop(self) -> None:
        """Stop the servers and close the bot's clients and database pool."""
        await self._exit.aclose()

    # --- the parts ----------------------------------------------------------------------------

    @property
    def slack(self) -> FakeSlack:
        """The fake Slack Web API (its calls, messages, threads, ephemerals, responses)."""
        return self.stack.slack

    @property
    def sandbox(self) -> SandboxState:
        """The sandbox's state: flags, switches, faults, its request log."""
        return self.stack.sandbox

    @property
    def store(self) -> Store:
        """The bot's store (the very one it uses: same event loop)."""
        return self.stack.runtime.store

    @property
    def driver(self) -> SlackDriver:
        """The driver sending signed requests."""
        return self.stack.driver

    # --- acting as Slack ----------------------------------------------------------------------

    async def command(self, text: str, *, user: str = ALICE, channel: str = RELEASES) -> httpx.Response:
        """Send a signed slash command (``text`` with or without ``/flag``); returns the ack."""
        return await self.driver.command(text, user=user, channel=channel)

    async def click(
        self,
        which: str | int,
        *,
        user: str = ALICE,
        message: Message | None = None,
        channel: str | None = None,
    ) -> httpx.Response:
        """Click a button (by text or 1-based position) of ``message`` (default: the last card)."""
        return await self.driver.click(which, user=user, message=message, channel=channel)

    def click_request(
        self, which: str | int, *, user: str = ALICE, message: Message | None = None
    ) -> SignedRequest:
        """A signed click, not sent: send it (several times) with :meth:`send`."""
        return self.driver.click_request(which, user=user, message=message)

    def command_request(self, text: str, *, user: str = ALICE, channel: str = RELEASES) -> SignedRequest:
        """A signed slash command, not sent."""
        return self.driver.command_request(text, user=user, channel=channel)

    async def send(self, request: SignedRequest) -> httpx.Response:
        """Send a prepared request (again: a replay is byte-for-byte the same request)."""
        return await self.driver.send(request)

    async def replay_last(self) -> httpx.Response:
        """Send the last request again, identical (same body, timestamp and signature)."""
        return await self.driver.send(self.driver.sent[-1])

    async def command_badly_signed(
        self, text: str, *, user: str = ALICE, channel: str = RELEASES
    ) -> httpx.Response:
        """A slash command signed with the wrong secret."""
        request = self.driver.command_request(
            text, user=user, channel=channel, secret="not-the-signing-secret"
        )
        return await self.driver.send(request)

    async def command_stale(self, text: str, *, user: str = ALICE, channel: str = RELEASES) -> httpx.Response:
        """A correctly signed slash command whose timestamp is older than Slack's 5-minute window."""
        stale = int(time.time()) - STALE_SECONDS
        request = self.driver.command_request(text, user=user, channel=channel, timestamp=stale)
        return await self.driver.send(request)

    async def idle(self, timeout: float = 15.0) -> None:
        """Wait until the bot has finished its background work (see ``SlackDriver.idle``),
        including rows its listeners left to the inbox's loop (``Inbox.settling``)."""
        await self.driver.idle(timeout=timeout)

    # --- reading what happened ----------------------------------------------------------------

    def card(self, channel: str = RELEASES) -> Message:
        """The latest top-level message of ``channel`` (normally the card)."""
        messages = self.slack.messages(channel)
        assert messages, f"nothing was posted in {channel}"
        return messages[-1]

    def thread(self, card: Message | None = None) -> list[Message]:
        """The replies under ``card`` (default: the latest card)."""
        parent = card or self.card()
        return self.slack.thread(parent.channel, parent.ts)

    def ephemeral_texts(self, user: str = ALICE) -> list[str]:
        """Texts of the ephemeral messages ``user`` got (``chat.postEphemeral`` and ``respond()``)."""
        return [e.text for e in self.slack.ephemerals(user)]

    def ld_requests(self) -> list[dict[str, Any]]:
        """Every request the sandbox received (method, path, query, body, status...)."""
        return list(self.sandbox.requests)

    def ld_patches(self, *, dry_runs: bool = False) -> list[dict[str, Any]]:
        """The PATCH requests LaunchDarkly received (without dry runs unless asked)."""
        return [
            r
            for r in self.sandbox.requests
            if r["method"] == "PATCH" and (dry_runs or str(r["query"].get("dryRun", "")).lower() != "true")
        ]


# --- the steps every test takes, as a person in Slack would -----------------------------------


async def run(bot: Harness, text: str, *, user: str = ALICE, channel: str | None = None) -> None:
    """Type a slash command and wait until the bot has done everything it does for it."""
    kwargs = {"channel": channel} if channel else {}
    assert (await bot.command(text, user=user, **kwargs)).status_code == 200
    await bot.idle()


async def click(
    bot: Harness, which: str, *, user: str = ALICE, message: Message | None = None, channel: str | None = None
) -> None:
    """Press a button (on ``message``, else the latest card) and wait for what follows."""
    assert (await bot.click(which, user=user, message=message, channel=channel)).status_code == 200
    await bot.idle()


def card_text(bot: Harness, channel: str = RELEASES) -> str:
    """Everything the latest card says: its fallback text and every block."""
    card = bot.card(channel)
    return card.text + " " + " ".join(str(b) for b in card.blocks)


def buttons(bot: Harness, channel: str = RELEASES) -> list[str]:
    """The labels of the latest card's buttons, in order."""
    return [b["text"]["text"] for b in bot.card(channel).buttons]


async def choose(
    bot: Harness, message: Message, menu: dict[str, Any], value: str, *, user: str, text: str = "x"
) -> None:
    """Pick the option ``value`` (labelled ``text``) of the overflow ``menu`` on ``message``, as
    Slack sends an overflow choice."""
    payload = block_actions_payload(
        user=bot.driver.user(user),
        channel_id=message.channel,
        message=message,
        button={"action_id": menu["action_id"], "block_id": "b"},
        response_url=bot.slack.new_response_url(message.channel, user),
    )
    payload["actions"] = [
        {
            "type": "overflow",
            "action_id": menu["action_id"],
            "block_id": "b",
            "selected_option": {"text": {"type": "plain_text", "text": text}, "value": value},
            "action_ts": "1700000000.1",
        }
    ]
    secret = bot.stack.settings.slack_signing_secret.get_secret_value()
    assert (await bot.send(signed_interaction(secret, payload))).status_code == 200
    await bot.idle()


async def details(bot: Harness, card: Message | None = None, *, user: str = ALICE) -> str:
    """Pick *Details* in the ⋯ menu of ``card`` (default: the latest card) and return everything
    the answer (to ``user`` alone) says."""
    message = card or bot.card()
    (menu,) = [
        e for b in message.blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "overflow"
    ]
    (value,) = [o["value"] for o in menu["options"] if o["text"]["text"] == "Details"]
    before = len(bot.slack.ephemerals(user))
    await choose(bot, message, menu, value, user=user, text="Details")
    answers = bot.slack.ephemerals(user)[before:]
    assert answers, "Details answered nothing"
    return " ".join(a.text + " " + " ".join(str(b) for b in a.blocks) for a in answers)
