"""The side-by-side benchmark (``bench/side_by_side.py``) is not run here: it takes minutes and
starts six processes. These checks keep its scripts loadable against the bot's code (the payload
builders, the fake Slack, Bolt) and its fake Slack's ``/_bench/`` routes honest, in well under a
second."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _client(app: object) -> httpx.AsyncClient:
    """The app served in-process (no socket)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test")  # type: ignore[arg-type]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"flagops_bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def test_the_bench_script_loads_and_says_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("side_by_side")
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "--database-url" in out and "--quick" in out


def test_launchdarkly_calls_are_told_apart() -> None:
    bench = _load("side_by_side")
    log = [
        {"method": "GET", "path": "/api/v2/flags/demo/new-checkout"},
        {"method": "PATCH", "path": "/api/v2/flags/demo/new-checkout"},
        {"method": "GET", "path": "/api/v2/members"},
        {"method": "GET", "path": "/api/v2/roles/writer-x"},
        {"method": "GET", "path": "/api/v2/projects/demo/environments"},
        {"method": "GET", "path": "/api/v2/auditlog"},
    ]
    assert bench.call_counts(log) == {"flag": 2, "identity": 2, "environments": 1, "other": 1}
    assert bench.percentile([0.3, 0.1, 0.2], 0.5) == 0.2
    assert bench.percentile([float(i) for i in range(1, 101)], 0.99) == 99.0


async def test_the_bench_fake_slack_times_each_post_and_hands_out_response_urls() -> None:
    fakes = _load("fakes")
    slack = fakes.BenchSlack("xoxb-bench")
    slack.fake.base_url = "http://127.0.0.1:1"
    async with _client(slack.asgi()) as client:
        urls = await client.post(
            "/_bench/response_urls", json={"channel": "C_X1", "user": "U_ALICE", "count": 2}
        )
        assert len(urls.json()["urls"]) == 2
        auth = {"Authorization": "Bearer xoxb-bench"}
        posted = await client.post(
            "/api/chat.postMessage", data={"channel": "C_X1", "text": "hi"}, headers=auth
        )
        assert posted.json()["ok"] is True
        refused = await client.post("/api/chat.postMessage", data={"channel": "C_X1", "text": "hi"})
        assert refused.json()["ok"] is False
        counts = (await client.get("/_bench/counts")).json()
        assert counts == {"chat.postMessage": 1, "chat.postMessage (failed)": 1}
        cards = (await client.get("/_bench/cards", params={"prefix": "C_X"})).json()
        assert list(cards) == ["C_X1"]
        rows = (await client.get("/_bench/channel/C_X1")).json()
        assert rows[0]["text"] == "hi" and rows[0]["arrived"] == cards["C_X1"]
    assert slack.fake.calls == []  # not kept: a long run would only grow it


async def test_the_bare_bolt_app_builds_from_the_bots_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-bench")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "bench-signing-secret")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:1/api")
    app = _load("bare_bolt").create()
    async with _client(app) as client:
        assert (await client.get("/healthz")).json() == {"ok": True}
        assert (await client.post("/slack/events", content=b"text=x")).status_code == 401  # unsigned
