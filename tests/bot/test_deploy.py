"""A deploy in the middle of an Apply: a real ``python -m bot`` process gets SIGTERM 0.2 s after
the click, with LaunchDarkly slow to answer; it finishes the write and reports it before it exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bot.launchdarkly.sandbox import SandboxState
from bot.launchdarkly.sandbox.app import create_app
from bot.offline.console import CONSOLE_CHANNEL, CONSOLE_CHANNEL_NAME
from bot.offline.fake_slack import FakeSlack
from bot.offline.payloads import SlackDriver
from bot.slack.server import free_port, serve_in_loop
from tests.bot.harness import ALICE

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sigterm-signing-secret"


async def _wait_for(predicate: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def _start(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m bot`` on a free port, healthy; started again on another port when the one picked
    was taken meanwhile (another test's server bound it between ``free_port`` and the bind)."""
    for attempt in range(3):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=cwd,
            env={**env, "PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(600):
                if process.poll() is not None:
                    break
                try:
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        return process, url
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        if process.poll() is None:
            process.kill()
        output = process.communicate(timeout=30)[0].decode()
        if "address already in use" not in output or attempt == 2:
            raise AssertionError(f"python -m bot did not start:\n{output[-3000:]}")
    raise AssertionError("unreachable")


async def test_sigterm_during_apply_finishes_the_write_and_reports_it(tmp_path: Path) -> None:
    state = SandboxState.demo(token="api-sigterm")
    fake = FakeSlack(tokens={"xoxb-sigterm"})
    fake.add_channel(CONSOLE_CHANNEL, CONSOLE_CHANNEL_NAME)
    async with serve_in_loop(create_app(state)) as ld_url, serve_in_loop(fake.app) as slack_url:
        fake.base_url = slack_url
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": "xoxb-sigterm",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": f"{slack_url}/api",
            "LD_API_TOKEN": "api-sigterm",
            "LD_BASE_URL": ld_url,
            "LD_PROJECT": "demo",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
            "FLAGOPS_SCHEDULER": "off",
            "FLAGOPS_RESPONSE_URL_HOSTS": "127.0.0.1",
        }
        process, bot_url = await _start(env, tmp_path)
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                driver = SlackDriver(
                    bot_url=bot_url, secret=SECRET, slack=fake, command_name="/flag", http=http
                )
                answer = await driver.send(
                    driver.command_request("/flag off new-checkout test", user=ALICE, channel=CONSOLE_CHANNEL)
                )
                assert answer.status_code == 200
                await _wait_for(lambda: any(m.buttons for m in fake.messages(CONSOLE_CHANNEL)), 30, "no card")
                state.faults = state.faults.model_copy(update={"latency": 1.0})
                answer = await driver.send(driver.click_request("Apply", user=ALICE))
                assert answer.status_code == 200
                await asyncio.sleep(0.2)
                process.send_signal(signal.SIGTERM)
                await _wait_for(lambda: process.poll() is not None, 40, "the process did not stop")
        finally:
            if process.poll() is None:
                process.kill()
            output = process.communicate(timeout=30)[0].decode()
    patches = [r for r in state.requests if r["method"] == "PATCH" and r["query"].get("dryRun") != "true"]
    assert len(patches) == 1, output[-3000:]
    assert state.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] is False
    card = fake.messages(CONSOLE_CHANNEL)[0]
    assert "Applied" in card.text + str(card.blocks), output[-3000:]
    assert "Traceback" not in output
