"""Issue 22's proof: a real ``python -m bot`` is killed (SIGKILL: nothing runs at exit) with 50
commands acked and not one carded yet (LaunchDarkly is slow to answer); after a restart every one
gets its card, none twice. On SQLite the restarted web process works its own inbox; on Postgres
two ``python -m bot worker`` processes share the rows left behind (a new row waking a worker by
``NOTIFY`` is tested in ``test_inbox.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bot.launchdarkly.sandbox import SandboxState
from bot.launchdarkly.sandbox.app import create_app
from bot.offline.console import CONSOLE_CHANNEL, CONSOLE_CHANNEL_NAME
from bot.offline.fake_slack import FakeSlack
from bot.offline.payloads import SignedRequest, SlackDriver
from bot.slack.server import free_port, serve_in_loop
from tests.bot.harness import ALICE

ROOT = Path(__file__).resolve().parents[2]
SECRET = "inbox-kill-signing-secret"
COMMANDS = 50
COMMENT = re.compile(r"acked-(\d+)")


class Bots:
    """The sandbox and the fake Slack, and the bot processes started against them."""

    def __init__(self, state: SandboxState, fake: FakeSlack, ld_url: str, slack_url: str, db: str) -> None:
        self.state = state
        self.fake = fake
        self.ld_url = ld_url
        self.slack_url = slack_url
        self.db = db
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self, port: int, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": "xoxb-inbox-kill",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": f"{self.slack_url}/api",
            "LD_API_TOKEN": "api-inbox-kill",
            "LD_BASE_URL": self.ld_url,
            "LD_PROJECT": "demo",
            "DATABASE_URL": self.db,
            "PORT": str(port),
            "FLAGOPS_SCHEDULER": "off",
            "FLAGOPS_RESPONSE_URL_HOSTS": "127.0.0.1",
            "FLAGOPS_INBOX_LEASE": "1.5",
            "FLAGOPS_INBOX_POLL": "0.1",
            "LD_TIMEOUT": "20",
            **extra,
        }

    def start(self, cwd: Path, *args: str, port: int | None = None, **extra: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            cwd=cwd,
            env=self.env(port or free_port(), **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def output(self) -> str:
        texts = []
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            texts.append(process.communicate(timeout=30)[0].decode())
        return "\n----\n".join(texts)

    def cards(self) -> list[str]:
        """The comment number of every card posted (a card carries its command's comment)."""
        found = []
        for message in self.fake.messages(CONSOLE_CHANNEL):
            if message.buttons:
                numbers = COMMENT.findall(message.text + str(message.blocks))
                found.append(numbers[0] if numbers else "?")
        return found


@contextlib.asynccontextmanager
async def bots(db: str) -> AsyncIterator[Bots]:
    state = SandboxState.demo(token="api-inbox-kill")
    fake = FakeSlack(tokens={"xoxb-inbox-kill"})
    fake.add_channel(CONSOLE_CHANNEL, CONSOLE_CHANNEL_NAME)
    async with serve_in_loop(create_app(state)) as ld_url, serve_in_loop(fake.app) as slack_url:
        fake.base_url = slack_url
        running = Bots(state, fake, ld_url, slack_url, db)
        try:
            yield running
        finally:
            for process in running.processes:
                if process.poll() is None:
                    process.kill()


async def _wait_for(predicate: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def _healthy(http: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert process.poll() is None, "python -m bot exited at start"
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"{url}/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("python -m bot did not become healthy")


async def _fifty_acked_then_killed(running: Bots, tmp_path: Path, http: httpx.AsyncClient) -> None:
    """Start the web process, slow LaunchDarkly down, send 50 commands (each acked), SIGKILL it."""
    port = free_port()
    web = running.start(tmp_path, port=port)
    url = f"http://127.0.0.1:{port}"
    await _healthy(http, url, web)
    running.state.faults = running.state.faults.model_copy(update={"latency": 5.0})
    driver = SlackDriver(bot_url=url, secret=SECRET, slack=running.fake, command_name="/flag", http=http)
    requests = [
        driver.command_request(
            f'/flag off new-checkout test -m "acked-{n}"', user=ALICE, channel=CONSOLE_CHANNEL
        )
        for n in range(COMMANDS)
    ]
    # The first alone (its row is worked at once: held by the process when it is killed), then
    # ten at a time, as a busy channel would send them (their rows wait for the burst to pass):
    # all 50 acked before any card can come.
    first = await driver.send(requests[0])
    gate = asyncio.Semaphore(10)

    async def send(request: SignedRequest) -> httpx.Response:
        async with gate:
            return await driver.send(request)

    answers = [first, *await asyncio.gather(*(send(r) for r in requests[1:]))]
    assert [a.status_code for a in answers] == [200] * COMMANDS
    web.send_signal(signal.SIGKILL)
    web.wait(timeout=10)
    assert running.cards() == [], "a card was posted before the kill: the test proves nothing"
    running.state.faults = running.state.faults.model_copy(update={"latency": 0.0})


def _every_card_once(running: Bots) -> None:
    cards = running.cards()
    assert sorted(cards, key=int) == [str(n) for n in range(COMMANDS)], (
        sorted(cards),
        running.output()[-3000:],
    )


async def test_sigkill_with_50_acked_commands_loses_none_and_cards_none_twice(tmp_path: Path) -> None:
    async with (
        bots(f"sqlite:///{tmp_path / 'kill.sqlite3'}") as running,
        httpx.AsyncClient(timeout=20) as http,
    ):
        await _fifty_acked_then_killed(running, tmp_path, http)
        port = free_port()
        restarted = running.start(tmp_path, port=port)
        await _healthy(http, f"http://127.0.0.1:{port}", restarted)
        await _wait_for(lambda: len(running.cards()) >= COMMANDS, 60, "not every command got its card")
        await asyncio.sleep(0.5)  # a second card, were there one, would come now
        _every_card_once(running)
        output = running.output()
    assert "Traceback" not in output


async def test_on_postgres_two_workers_take_over_the_killed_process_rows(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    async with bots(empty_postgres_url) as running, httpx.AsyncClient(timeout=20) as http:
        await _fifty_acked_then_killed(running, tmp_path, http)
        workers = [running.start(tmp_path, "worker", FLAGOPS_INBOX="workers") for _ in range(2)]
        await _wait_for(lambda: len(running.cards()) >= COMMANDS, 60, "not every command got its card")
        await asyncio.sleep(0.5)  # a second card, were there one, would come now
        _every_card_once(running)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(timeout=30) == 0
        output = running.output()
    assert "Traceback" not in output
    assert output.count("inbox worker stopped") == 2, output[-3000:]
    assert "taken over, attempt 2" in output, output[-3000:]
