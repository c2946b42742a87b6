"""The offline console runs every help example against the sandbox's demo project."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from commands import examples

ROOT = Path(__file__).resolve().parents[2]


def test_every_help_example_runs_in_the_console() -> None:
    texts = [e.text for e in examples()]
    script = "".join(f"/flag {t}\n" for t in texts) + "quit\n"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input=script,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    for bad in ("Traceback", "went wrong", "Exception"):
        assert bad not in output + result.stderr, output[-3000:]
    # Every example got an answer: a card in the channel or a message for the requester alone.
    answers = re.split(r"^> ", output, flags=re.M)[1:]
    assert len(answers) >= len(texts)
    for text, answer in zip(texts, answers, strict=False):
        assert answer.strip().startswith("/flag " + text[:20]), (text, answer[:200])
        assert len(answer.strip().splitlines()) > 1, f"no answer to {text!r}"
    cards = output.count("#releases @flagops:")
    assert cards >= 60, f"only {cards} cards for {len(texts)} examples"


def test_approvals_between_people_work_offline() -> None:
    # Alice and Bob connect through the sandbox's OAuth; Alice asks, Bob approves and applies.
    script = (
        "/flag link-account\nclick Connect\nas bob\n/flag link-account\nclick Connect\nas alice\n"
        "/flag on new-checkout production\nclick Request approval\nas bob\nclick Approve and apply\nquit\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    assert output.count("(browser) Connected") == 2, output[-3000:]
    assert "Connected: you now act in LaunchDarkly as *bob@example.com*" in output
    assert "Approved and applied by @bob as bob@example.com" in output, "one message for one click"
    assert "Traceback" not in output + result.stderr
