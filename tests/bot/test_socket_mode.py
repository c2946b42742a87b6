"""Socket Mode, tested like HTTP: the bot's real Socket Mode client (slack_sdk's, through Bolt's
adapter) against a fake of Slack's Socket Mode on loopback (``bot.offline.fake_socket_mode``).

The core scenarios are the HTTP tests themselves, run with a bot reached over the socket; then
what only Socket Mode has: acks by ``envelope_id``, ``disconnect`` and dropped sockets answered by
a new ``apps.connections.open`` each time, envelopes sent again after a reconnect, the app token,
and ``python -m bot`` itself in Socket Mode.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_bolt.response import BoltResponse

from bot.launchdarkly.sandbox import SandboxState, create_app
from bot.offline.console import CONSOLE_APP_TOKEN
from bot.offline.fake_slack import FakeSlack
from bot.offline.fake_socket_mode import FakeSocketMode, SocketRefused, envelope_of
from bot.offline.payloads import SlackUser, slash_command_body
from bot.slack.server import create_health_app, free_port, serve_in_loop
from bot.slack.socket_mode import socket_mode_handler
from tests.bot import test_approvals, test_loop, test_message_actions
from tests.bot.harness import ALICE, RELEASES, Harness, buttons, card_text, click, run

StartBot = Callable[..., Awaitable[Harness]]


@pytest.fixture
def start_socket_bot(start_bot: StartBot) -> StartBot:
    """Start bots reached over Socket Mode (``start_bot`` with ``socket_mode=True``)."""

    async def start(**kwargs: Any) -> Harness:
        return await start_bot(socket_mode=True, **kwargs)

    return start


@pytest.fixture
async def socket_bot(start_socket_bot: StartBot) -> Harness:
    return await start_socket_bot()


def socket_of(bot: Harness) -> FakeSocketMode:
    socket = bot.stack.socket
    assert socket is not None, "this bot is not reached over Socket Mode"
    return socket


# --- the core scenarios, exactly as over HTTP ----------------------------------------------------

SCENARIOS = [
    test_loop.test_off_is_previewed_applied_and_reported_in_the_thread,  # command → card → Apply → thread
    test_loop.test_only_the_requester_may_apply,  # a wrong user's click is refused
    test_loop.test_usage_error_goes_to_the_requester_only,
    test_loop.test_cancel_and_a_click_after_it,
    test_loop.test_twenty_concurrent_clicks_apply_once,
    test_loop.test_405_at_apply_turns_into_request_approval,
    test_approvals.test_405_request_approve_apply_as_linked_members,  # modals, approval, apply
    test_approvals.test_decline_with_a_reason,
    test_message_actions.test_a_flag_command_in_a_message_runs_the_loop_in_its_thread,  # shortcut
    test_message_actions.test_text_that_does_not_parse_opens_a_prefilled_modal,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__.removeprefix("test_"))
async def test_the_http_scenario_holds_over_the_socket(
    scenario: Callable[[Any], Awaitable[None]], start_socket_bot: StartBot
) -> None:
    wants_a_bot = "bot" in inspect.signature(scenario).parameters
    harness = await start_socket_bot() if wants_a_bot else None
    await scenario(harness if harness is not None else start_socket_bot)
    if harness is not None:
        socket = socket_of(harness)
        assert socket.envelopes and all(e.acked.is_set() for e in socket.envelopes), "every envelope acked"
        assert not socket.unknown_acks


async def test_every_request_went_over_the_socket_and_was_acked_by_envelope_id(socket_bot: Harness) -> None:
    bot, socket = socket_bot, socket_of(socket_bot)
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    assert [e.type for e in socket.envelopes] == ["slash_commands", "interactive"]
    assert [e.ack and e.ack["envelope_id"] for e in socket.envelopes] == [
        e.envelope_id for e in socket.envelopes
    ]
    (opened,) = bot.slack.calls_to("apps.connections.open")
    assert opened.token == CONSOLE_APP_TOKEN, "the socket is opened with the app-level token"
    assert socket.opens == socket.hellos == 1


# --- reconnects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["refresh_requested", "warning", "dropped"])
async def test_a_reconnect_in_the_middle_of_a_flow_loses_nothing(socket_bot: Harness, how: str) -> None:
    bot, socket = socket_bot, socket_of(socket_bot)
    await run(bot, "/flag off new-checkout test")
    if how == "dropped":
        await socket.drop()
    else:
        await socket.disconnect(how, close=how != "warning")
    await socket.wait_for_hellos(2)
    assert socket.opens >= 2, "each reconnect asks apps.connections.open for a new URL"
    await click(bot, "Apply")
    assert buttons(bot) == ["Undo"] and "Applied by" in card_text(bot)
    assert len(bot.ld_patches()) == 1
    assert socket.envelopes[-1].connection > socket.envelopes[0].connection, "the click used the new socket"


async def test_a_click_sent_again_after_a_reconnect_applies_once_and_says_it_once(
    socket_bot: Harness,
) -> None:
    bot, socket = socket_bot, socket_of(socket_bot)
    await run(bot, "/flag off new-checkout test")
    kind, payload = envelope_of(bot.click_request("Apply").body)
    # Slack sends the click, the socket goes before Slack sees the ack, Slack sends it again.
    first = await socket.send(kind, payload)
    await socket.drop()
    await socket.wait_for_hellos(2)
    again = await socket.deliver(kind, payload, retry_attempt=1, retry_reason="timeout")
    await bot.idle()
    assert first.connection < socket.envelopes[-1].connection, "sent again on the new socket"
    assert again["envelope_id"] == socket.envelopes[-1].envelope_id
    assert len(bot.ld_patches()) == 1, "one PATCH"
    replies = [m.text for m in bot.thread()]
    assert len(replies) == 1 and "Applied" in card_text(bot), replies
    assert not any("already" in t for t in bot.ephemeral_texts(ALICE)), "the repeat is not even answered"


async def test_a_command_sent_again_after_a_reconnect_makes_one_card(socket_bot: Harness) -> None:
    bot, socket = socket_bot, socket_of(socket_bot)
    kind, payload = envelope_of(bot.command_request("/flag off new-checkout test").body)
    await socket.send(kind, payload)
    await socket.disconnect("refresh_requested")
    await socket.wait_for_hellos(2)
    await socket.deliver(kind, payload, retry_attempt=1, retry_reason="timeout")
    await bot.idle()
    assert len(bot.slack.messages(RELEASES)) == 1, "one card"
    assert len(bot.ld_patches(dry_runs=True)) == 1, "one preview"


async def test_two_reconnects_in_a_row_then_the_loop(socket_bot: Harness) -> None:
    bot, socket = socket_bot, socket_of(socket_bot)
    for count in (2, 3):
        await socket.disconnect("refresh_requested")
        await socket.wait_for_hellos(count)
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    # slack_sdk may ask for a URL both on `disconnect` and on the close that follows it; one is used.
    assert socket.opens >= 3 and socket.connected == 1
    assert bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] is False


async def test_with_a_public_url_the_oauth_callback_and_webhook_are_served_beside_the_socket(
    start_socket_bot: StartBot,
) -> None:
    bot = await start_socket_bot(oauth=True)
    handler = socket_mode_handler(bot.stack.runtime.bolt, bot.stack.settings)
    health = create_health_app(handler, bot.stack.runtime.services)
    async with serve_in_loop(health) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/healthz")).json() == {"ok": True, "socket": "reconnecting"}
        answer = await http.get(f"{url}/oauth/launchdarkly/callback?state=unknown&code=x")
        assert answer.status_code == 400 and "expired or was already used" in answer.text
        # The LaunchDarkly webhook too: an unsigned delivery is refused there as over HTTP.
        unsigned = await http.post(f"{url}/launchdarkly/webhook", content=b'{"_id": "x"}')
        assert unsigned.status_code == 401
    await handler.close_async()  # type: ignore[no-untyped-call]
    plain = await start_socket_bot()
    health = create_health_app(handler, plain.stack.runtime.services)
    async with serve_in_loop(health) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/oauth/launchdarkly/callback")).status_code == 404, (
            "no public URL: none"
        )
        assert (await http.post(f"{url}/launchdarkly/webhook", content=b"{}")).status_code in (404, 405)


# --- the fake keeps Slack's rules -------------------------------------------------------------------


def test_the_socket_opens_only_with_an_app_level_token() -> None:
    socket = FakeSocketMode(app_tokens={"xapp-right"})
    socket.base_url = "ws://127.0.0.1:1"
    for token, error in [
        (None, "not_authed"),
        ("xoxb-bot", "not_allowed_token_type"),
        ("xapp-wrong", "invalid_auth"),
    ]:
        with pytest.raises(SocketRefused) as refused:
            socket.open_connection(token)
        assert refused.value.error == error
    assert socket.open_connection("xapp-right").startswith("ws://127.0.0.1:1/link/?ticket=")


async def test_a_socket_url_is_good_for_one_connection() -> None:
    socket = FakeSocketMode()
    async with socket.serving(), httpx.AsyncClient() as http:
        url = socket.open_connection("xapp-x").replace("ws://", "http://")
        answer = await http.get(url.replace("ticket=", "ticket=not-"))
        assert answer.status_code == 401
    assert socket.hellos == 0


# --- python -m bot in Socket Mode ------------------------------------------------------------------


async def test_python_m_bot_serves_socket_mode_with_health_on_port(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    sandbox = SandboxState.demo(token="api-socket")
    slack = FakeSlack(tokens={"xoxb-socket"})
    slack.add_channel(RELEASES, "releases")
    socket = slack.socket_mode = FakeSocketMode(app_tokens={"xapp-socket"})
    port = free_port()
    async with (
        serve_in_loop(create_app(sandbox)) as ld_url,
        serve_in_loop(slack.app) as slack_url,
        socket.serving(),
    ):
        slack.base_url = slack_url
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(root),
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": "xoxb-socket",
            "SLACK_SIGNING_SECRET": "socket-secret",
            "SLACK_APP_TOKEN": "xapp-socket",
            "SLACK_API_URL": f"{slack_url}/api",
            "LD_API_TOKEN": "api-socket",
            "LD_BASE_URL": ld_url,
            "LD_PROJECT": "demo",
            "FLAGOPS_SCHEDULER": "off",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.sqlite3'}",
            "PORT": str(port),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            await socket.wait_for_hellos(1, timeout=60)
            async with httpx.AsyncClient() as http:
                health = await _health(http, port, process)
                assert health == {"ok": True, "socket": "connected"}
                assert (
                    await http.post(f"http://127.0.0.1:{port}/slack/events", content=b"x")
                ).status_code == 404
            body = slash_command_body(
                command="/flag",
                text="off new-checkout test",
                user=SlackUser(ALICE, "alice"),
                channel_id=RELEASES,
                response_url=slack.new_response_url(RELEASES, ALICE),
            )
            await socket.deliver(*envelope_of(body), timeout=30)
            await _until(lambda: bool(slack.messages(RELEASES)), process)
            assert "Apply" in str(slack.messages(RELEASES)[-1].blocks)
        finally:
            process.send_signal(signal.SIGTERM)
            output = await asyncio.to_thread(lambda: process.communicate(timeout=30)[0].decode())
    assert process.returncode == 0, output
    assert "Socket Mode connection closed; flagops stopped" in output
    assert "xapp-socket" not in output and "xoxb-socket" not in output


async def _health(http: httpx.AsyncClient, port: int, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = await http.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        assert process.poll() is None, "python -m bot stopped"
        assert time.monotonic() < deadline, "no /healthz on PORT"
        await asyncio.sleep(0.05)


async def _until(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert process.poll() is None, "python -m bot stopped"
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_delivery_that_failed_before_its_ack_runs_when_sent_again(
    socket_bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bolt answers 500 when something raises before ack() (its authorization's auth.test timing out
    # in a Slack incident): no ack, so Slack sends the envelope again, and that one must run.
    bot, socket = socket_bot, socket_of(socket_bot)
    app = bot.stack.runtime.bolt
    real, failed = app.async_dispatch, []

    async def first_fails(request: Any) -> BoltResponse:
        if not failed:
            failed.append(request)
            return BoltResponse(status=500, body="")
        return await real(request)

    monkeypatch.setattr(app, "async_dispatch", first_fails)
    kind, payload = envelope_of(bot.command_request("/flag off new-checkout test").body)
    first = await socket.send(kind, payload)
    await bot.idle()
    assert failed and not first.acked.is_set()
    await socket.deliver(kind, payload, retry_attempt=1, retry_reason="timeout")
    await bot.idle()
    assert len(bot.slack.messages(RELEASES)) == 1, "the retry made the card"


async def test_twenty_copies_of_one_click_at_once_apply_once(socket_bot: Harness) -> None:
    bot, socket = socket_bot, socket_of(socket_bot)
    await run(bot, "/flag off new-checkout test")
    kind, payload = envelope_of(bot.click_request("Apply").body)
    envelopes = await asyncio.gather(*(socket.send(kind, payload, retry_attempt=i) for i in range(20)))
    await asyncio.gather(*(asyncio.wait_for(e.acked.wait(), 5) for e in envelopes))
    await bot.idle()
    assert len(bot.ld_patches()) == 1 and len(bot.thread()) == 1
