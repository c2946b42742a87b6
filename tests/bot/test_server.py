"""The served bot: signed requests only, /healthz, the ack-then-work model, the one error handler,
the lifespan, and the offline console."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy import text

from bot.config import load_settings
from bot.offline.console import HELP, Console, mrkdwn_to_text, render_blocks
from bot.offline.payloads import app_home_opened_payload, find_button, signed_event
from bot.persistence.store import Store
from bot.slack.server import create_web_app, free_port, serve_in_loop
from bot.wiring import Services
from commands.errors import CommandError
from commands.instructions import SemanticPatch, TurnFlagOn
from tests.bot.harness import ALICE, BOB, RELEASES, Harness

StartBot = Callable[..., Awaitable[Harness]]


def echo(app: AsyncApp, deps: Services) -> None:
    """A stand-in feature: ack, then post in the channel (or fail, to reach the error handler)."""

    async def work(body: dict[str, Any]) -> None:
        if body["text"] == "crash":
            raise RuntimeError(f"boom with {deps.settings.slack_bot_token.get_secret_value()}")
        if body["text"] == "mistake":
            raise CommandError("There is no flag `nope`.", usage="/flag on FLAG ENV")
        await deps.messenger.post(body["channel_id"], f"echo: {body['text']}", [])

    @app.command(deps.settings.flagops_command)
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        if body["text"] == "crash in the listener":  # a bug in a listener itself, after its ack
            await ack()
            raise RuntimeError(f"boom with {deps.settings.slack_bot_token.get_secret_value()}")
        await ack()
        deps.inbox.after_ack(body, lambda: work(body))


async def test_healthz(start_bot: StartBot) -> None:
    bot = await start_bot(features=[])
    async with httpx.AsyncClient() as http:
        answer = await http.get(bot.stack.bot_url + "/healthz")
    assert answer.status_code == 200 and answer.json() == {"ok": True}


@pytest.mark.parametrize("forgery", ["bad signature", "stale timestamp"])
async def test_unsigned_requests_get_401_and_nothing_else(start_bot: StartBot, forgery: str) -> None:
    bot = await start_bot(features=[echo])
    if forgery == "bad signature":
        answer = await bot.command_badly_signed("/flag on new-checkout test")
    else:
        answer = await bot.command_stale("/flag on new-checkout test")
    await bot.idle()
    assert answer.status_code == 401
    assert bot.slack.calls == [] and bot.slack.responses == []
    assert bot.ld_requests() == []
    async with bot.store.engine.connect() as connection:
        assert (await connection.execute(text("select count(*) from changes"))).scalar_one() == 0


async def test_signed_command_is_acked_then_worked_on(start_bot: StartBot) -> None:
    bot = await start_bot(features=[echo])
    answer = await bot.command("/flag hello there", user=BOB)
    assert answer.status_code == 200
    await bot.idle()
    assert [m.text for m in bot.slack.messages(RELEASES)] == ["echo: hello there"]
    # The same signed request, replayed, passes the signature check too: deduplication is the
    # store's job (compare-and-set), not the signature's.
    assert (await bot.replay_last()).status_code == 200
    await bot.idle()
    assert len(bot.slack.messages(RELEASES)) == 2


@pytest.mark.parametrize("text", ["crash", "crash in the listener"])
async def test_unexpected_errors_get_a_generic_answer_and_a_log(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    bot = await start_bot(features=[echo])
    with caplog.at_level(logging.ERROR, logger="flagops"):
        # Acked either way: a listener that fails after its ack still answers Slack with the ack.
        assert (await bot.command(f"/flag {text}")).status_code == 200
        await bot.idle()
    [told] = bot.ephemeral_texts(ALICE)
    assert "something went wrong" in told and "boom" not in told
    token = bot.stack.settings.slack_bot_token.get_secret_value()
    assert any(r.exc_info for r in caplog.records), "the traceback is logged"
    reference = told.split("reference `")[1].split("`")[0]
    assert any(reference in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() for r in caplog.records)


async def test_command_errors_are_shown_to_the_user(start_bot: StartBot) -> None:
    bot = await start_bot(features=[echo])
    await bot.command("/flag mistake")
    await bot.idle()
    [told] = bot.ephemeral_texts(ALICE)
    assert "There is no flag `nope`." in told and "/flag on FLAG ENV" in told


async def test_lifespan_migrates_and_serves(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'served.sqlite3'}"
    settings = load_settings("console", database_url=url)
    async with serve_in_loop(create_web_app(settings), lifespan=True) as base, httpx.AsyncClient() as http:
        assert (await http.get(base + "/healthz")).json() == {"ok": True}
        unsigned = await http.post(base + "/slack/events", content=b"command=%2Fflag&text=on")
        assert unsigned.status_code == 401
    store = Store.from_url(url)
    try:
        assert await store.get_change("none") is None  # the tables exist
    finally:
        await store.close()


def test_render_blocks_numbers_buttons() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "new-checkout"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "<@U_ALICE> wants to turn it *on*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://x.test/f|open> in LD"}]},
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Apply"}},
                {"type": "button", "action_id": "c", "text": {"type": "plain_text", "text": "Cancel"}},
            ],
        },
    ]
    assert render_blocks(blocks, {"U_ALICE": "alice"}) == [
        "== new-checkout ==",
        "@alice wants to turn it *on*",
        "  · open (https://x.test/f) in LD",
        "-" * 40,
        "[1] Apply  [2] Cancel",
    ]
    assert mrkdwn_to_text("a &lt;b&gt; <#C1|releases> <https://x.test>") == "a <b> #releases https://x.test"


async def test_console_prints_new_messages(start_bot: StartBot) -> None:
    bot = await start_bot(features=[echo])
    out = io.StringIO()
    console = Console(bot.stack, out)
    assert await console.handle("/flag hi")
    assert await console.handle("as bob")
    assert await console.handle("click 1")
    assert not await console.handle("quit")
    printed = out.getvalue()
    assert "> /flag hi" in printed and "echo: hi" in printed
    assert "You are now @bob." in printed
    assert "no button" in printed or "no message with buttons" in printed


def test_console_scripted_help() -> None:
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input="help\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    assert run.returncode == 0, run.stderr
    assert HELP.splitlines()[0] in run.stdout
    assert "Traceback" not in run.stderr


def one_shot_apply(app: AsyncApp, deps: Services) -> None:
    """A stand-in for the change lifecycle: the store's compare-and-set guards a single PATCH."""

    @app.command(deps.settings.flagops_command)
    async def propose(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        change = await deps.store.create_change(
            requester_id=body["user_id"],
            requester_name=body["user_name"],
            channel_id=body["channel_id"],
            project="demo",
            flag_key="new-checkout",
            environment="test",
            command_text=body["text"],
            request_json=SemanticPatch(environmentKey="test", instructions=[TurnFlagOn()]).model_dump_json(),
            preview_version=1,
            expires_at=datetime.now(UTC) + timedelta(minutes=15),
        )
        button = {"type": "button", "action_id": "race_apply", "value": change.id}
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Turn *new-checkout* on in test?"}},
            {"type": "actions", "elements": [{**button, "text": {"type": "plain_text", "text": "Apply"}}]},
        ]
        await deps.store.set_card(change.id, await deps.messenger.post(body["channel_id"], "card", blocks))

    @app.action("race_apply")
    async def apply(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        won = await deps.store.transition(action["value"], ["proposed"], "applying", body["user"]["id"])
        if won is None:
            return
        patch = SemanticPatch.model_validate_json(won.request_json)
        await deps.ld.patch_flag_semantic(won.project, won.flag_key, patch)
        await deps.store.transition(won.id, ["applying"], "applied", body["user"]["id"], ld_status=200)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_two_instances_racing_clicks_patch_once(
    start_bot: StartBot, database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two bot instances (own servers, clients and pools) share LaunchDarkly, Slack and a database."""
    url = (
        str(request.getfixturevalue("postgres_url"))
        if database == "postgres"
        else f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"
    )
    first = await start_bot(database_url=url, features=[one_shot_apply])
    second = await start_bot(
        database_url=url, features=[one_shot_apply], sandbox=first.sandbox, slack=first.slack
    )
    await first.command("/flag race")
    await first.idle()
    card = first.card()
    clicks = [first.click_request("Apply", message=card) for _ in range(10)]
    answers = await asyncio.gather(*(bot.send(c) for c in clicks for bot in (first, second)))
    await first.idle()
    await second.idle()
    assert {a.status_code for a in answers} == {200}
    assert len(first.ld_patches()) == 1
    change_id = find_button(card, "Apply")["value"]
    trail = await second.store.audit_for(change_id)
    assert [e.to_state for e in trail] == ["proposed", "applying", "applied"]


async def test_a_failing_lifespan_is_an_error_not_an_exit(tmp_path: Path) -> None:
    settings = load_settings("console", database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with pytest.raises(RuntimeError, match="did not start"):
        async with serve_in_loop(create_web_app(settings), lifespan=True):
            pass


def test_python_m_bot_serves_http_until_stopped(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(root),
        "SLACK_BOT_TOKEN": "xoxb-smoke",
        "SLACK_SIGNING_SECRET": "smoke-secret",
        "LD_API_TOKEN": "api-smoke",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'smoke.sqlite3'}",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "python -m bot did not answer /healthz"
            time.sleep(0.1)
        assert httpx.post(f"http://127.0.0.1:{port}/slack/events", content=b"x=1").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as a supervisor expects.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "xoxb-smoke" not in output and "smoke-secret" not in output
    assert (tmp_path / "smoke.sqlite3").exists()


def test_python_m_bot_clock_runs_the_scheduler_until_stopped(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(root),
        "PYTHONUNBUFFERED": "1",
        "SLACK_BOT_TOKEN": "xoxb-smoke",
        "SLACK_SIGNING_SECRET": "smoke-secret",
        "LD_API_TOKEN": "api-smoke",
        "LD_BASE_URL": "http://127.0.0.1:9",  # nothing is due, so nothing is called
        "DATABASE_URL": f"sqlite:///{tmp_path / 'clock.sqlite3'}",
        "FLAGOPS_SCHEDULER_INTERVAL": "0.2",
    }
    log = tmp_path / "clock.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "clock"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            # Migrate, take the lead, tick a few times: seconds, more on a loaded machine.
            deadline = time.monotonic() + 60
            while "scheduler started" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
            time.sleep(1)
            assert process.poll() is None, log.read_text()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    output = log.read_text()
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "scheduler started" in output, output
    assert "Traceback" not in output and "xoxb-smoke" not in output


def failing_home(app: AsyncApp, deps: Services) -> None:
    """A stand-in feature whose event listener has a bug."""

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any]) -> None:
        raise RuntimeError("a bug in an event listener")


async def test_an_event_whose_listener_fails_is_still_acked_and_not_sent_again(start_bot: StartBot) -> None:
    bot = await start_bot(features=[failing_home])
    secret = bot.stack.settings.slack_signing_secret.get_secret_value()
    answer = await bot.send(signed_event(secret, app_home_opened_payload(ALICE)))
    await bot.idle()
    assert answer.status_code == 200
