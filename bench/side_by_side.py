"""flagops' front door beside a bare Bolt app, under load, over signed HTTP (not a test).

    .venv/bin/python bench/side_by_side.py                      # SQLite (default), ~4 minutes
    .venv/bin/python bench/side_by_side.py --database-url postgresql://postgres@127.0.0.1:5432/flagops_bench
    .venv/bin/python bench/side_by_side.py --quick              # a handful of requests (a smoke run)

Every program is a process of its own, started the same way for both apps: the LaunchDarkly
sandbox (``python -m bot sandbox``, answering every request in ``--latency`` seconds), the fake
Slack (``bench/fakes.py``), and the app (``python -m bot``, or ``bench/bare_bolt.py``, which only
acks). This process is the load generator: it signs slash commands and clicks as Slack does and
sends them over loopback, so it never shares an event loop with the app. See bench/README.md for
what each line measures and the last numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.offline.fake_slack import Message  # noqa: E402
from bot.offline.payloads import (  # noqa: E402
    SlackUser,
    block_actions_payload,
    find_button,
    interaction_body,
    sign,
    slash_command_body,
)
from bot.slack.server import free_port  # noqa: E402

SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
LD_TOKEN = "sandbox-alice"  # the sandbox's writer token: the bot's service token
USER = SlackUser("U_ALICE", "alice")  # a LaunchDarkly member (writer) in the sandbox
COMMAND = "/flag"
LOAD_TEXT = "off new-checkout test"  # new-checkout is on in test: every one of these makes a card
CHANNELS = 16  # the load's channels (a few teams' channels; each channel's settings are cached)

# Targets (issue 23), as ratios to the bare Bolt app or absolute.
TARGET_P99_RATIO = {20: 1.3, 100: 1.5}
TARGET_ACKED_PER_S = 300.0
TARGET_CARD_EXTRA = 0.050  # command → card ≤ 2 × latency + this
TARGET_APPLY_EXTRA = 0.030  # Apply → outcome ≤ latency + this
TARGET_FLAG_CALLS_PER_APPLY = 2.0
TARGET_RSS_MB = 150.0


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _start(name: str, argv: list[str], port: int, env: dict[str, str], tmp: Path) -> Proc:
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Proc(name, popen, f"http://127.0.0.1:{port}", log)


async def _ready(http: aiohttp.ClientSession, proc: Proc, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}); see {proc.log}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(proc.url + path) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not start in {timeout:.0f} s; see {proc.log}")


@dataclass
class Stack:
    """The sandbox, the fake Slack and one app, each a process."""

    app_name: str
    sandbox: Proc
    slack: Proc
    app: Proc
    http: aiohttp.ClientSession
    worker: Proc | None = None  # ``python -m bot worker`` (``--inbox workers``)

    async def response_urls(self, channel: str, count: int) -> list[str]:
        body = {"channel": channel, "user": USER.id, "count": count}
        async with self.http.post(self.slack.url + "/_bench/response_urls", json=body) as response:
            urls: list[str] = (await response.json())["urls"]
            return urls

    async def slack_counts(self) -> Counter[str]:
        async with self.http.get(self.slack.url + "/_bench/counts") as response:
            return Counter(await response.json())

    async def cards(self, prefix: str) -> dict[str, float]:
        async with self.http.get(self.slack.url + "/_bench/cards", params={"prefix": prefix}) as response:
            found: dict[str, float] = await response.json()
            return found

    async def channel(self, channel: str) -> list[dict[str, Any]]:
        async with self.http.get(self.slack.url + f"/_bench/channel/{channel}") as response:
            rows: list[dict[str, Any]] = await response.json()
            return rows

    async def ld_log(self, *, clear: bool = False) -> list[dict[str, Any]]:
        if clear:
            async with self.http.delete(self.sandbox.url + "/_sandbox/requests"):
                return []
        async with self.http.get(self.sandbox.url + "/_sandbox/requests") as response:
            rows: list[dict[str, Any]] = await response.json()
            return rows


@contextlib.asynccontextmanager
async def stack(
    app: str, *, latency: float, database_url: str | None, extra_env: dict[str, str], workers: bool = False
) -> AsyncIterator[Stack]:
    """Start the sandbox, the fake Slack and ``app`` (``flagops`` or ``bare``) as processes, and
    with ``workers`` (flagops only) a ``python -m bot worker`` beside it."""
    with tempfile.TemporaryDirectory(prefix=f"flagops-bench-{app}-") as name:
        tmp = Path(name)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LD_", "FLAGOPS_"))}
        env["PYTHONPATH"] = str(ROOT)
        ports = {"sandbox": free_port(), "slack": free_port(), "app": free_port()}
        procs: list[Proc] = []
        try:
            procs.append(
                sandbox := _start(
                    "sandbox",
                    [
                        sys.executable,
                        "-m",
                        "bot",
                        "sandbox",
                        "--port",
                        str(ports["sandbox"]),
                        "--token",
                        LD_TOKEN,
                        "--faults",
                        json.dumps({"latency": latency}),
                    ],
                    ports["sandbox"],
                    env,
                    tmp,
                )
            )
            procs.append(
                slack := _start(
                    "slack",
                    [
                        sys.executable,
                        str(ROOT / "bench" / "fakes.py"),
                        "--port",
                        str(ports["slack"]),
                        "--token",
                        BOT_TOKEN,
                    ],
                    ports["slack"],
                    env,
                    tmp,
                )
            )
            app_env = {
                **env,
                "PORT": str(ports["app"]),
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": f"{slack.url}/api",
                "LD_API_TOKEN": LD_TOKEN,
                "LD_BASE_URL": sandbox.url,
                "LD_PROJECT": "demo",
                "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp / 'flagops.sqlite3'}",
                "FLAGOPS_COMMAND": COMMAND,
                "FLAGOPS_RESPONSE_URL_HOSTS": "hooks.slack.com,127.0.0.1",
                **({"FLAGOPS_INBOX": "workers"} if workers else {}),
                **extra_env,
            }
            argv = (
                [sys.executable, "-m", "bot"]
                if app == "flagops"
                else [sys.executable, str(ROOT / "bench" / "bare_bolt.py")]
            )
            procs.append(started := _start(app, argv, ports["app"], app_env, tmp))
            timeout = aiohttp.ClientTimeout(total=60)
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                await _ready(http, sandbox, "/_sandbox/faults")
                await _ready(http, slack, "/_bench/counts")
                await _ready(http, started, "/healthz")
                worker = None
                if workers and app == "flagops":  # after the web process migrated the database
                    worker_argv = [sys.executable, "-m", "bot", "worker"]
                    procs.append(worker := _start("worker", worker_argv, ports["app"], app_env, tmp))
                    await asyncio.sleep(2.0)
                    if worker.popen.poll() is not None:
                        raise RuntimeError(f"the worker exited; see {worker.log}")
                yield Stack(app, sandbox, slack, started, http, worker)
        finally:
            for proc in reversed(procs):
                proc.stop()
            for proc in procs:  # kept after the temporary folder goes, to read after a run
                shutil.copy(proc.log, Path(tempfile.gettempdir()) / f"flagops-bench-{app}-{proc.name}.log")


# --- load ----------------------------------------------------------------------------------------


@dataclass
class Round:
    """One burst: ``count`` requests, ``concurrency`` at a time."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)  # channel → when its command left
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def burst(
    bench: Stack, count: int, concurrency: int, channel_of: Callable[[int], str], text: str = LOAD_TEXT
) -> Round:
    """Send ``count`` signed slash commands, ``concurrency`` at a time, and time each ack."""
    channels = sorted({channel_of(i) for i in range(count)})
    urls: dict[str, list[str]] = {}
    for channel in channels:
        urls[channel] = await bench.response_urls(
            channel, sum(1 for i in range(count) if channel_of(i) == channel)
        )
    bodies = [
        slash_command_body(
            command=COMMAND,
            text=text,
            user=USER,
            channel_id=channel_of(i),
            response_url=urls[channel_of(i)].pop(),
        )
        for i in range(count)
    ]
    result = Round(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        url = bench.app.url + "/slack/events"
        queue = iter(range(count))

        async def worker() -> None:
            for i in queue:
                body = bodies[i]
                headers = sign(SECRET, body)
                start = time.monotonic()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
                result.latencies.append(time.monotonic() - start)
                result.sent_at[channel_of(i)] = start
                result.statuses[status] += 1

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.monotonic() - began
    return result


async def wait_for_cards(bench: Stack, expected: int, *, stall: float = 20.0) -> int:
    """Wait until the fake Slack has ``expected`` cards (chat.postMessage), or nothing moved for
    ``stall`` seconds; the number seen."""
    seen, last_move = -1, time.monotonic()
    while True:
        posts = (await bench.slack_counts())["chat.postMessage"]
        if posts >= expected:
            return posts
        if posts != seen:
            seen, last_move = posts, time.monotonic()
        elif time.monotonic() - last_move > stall:
            return posts
        await asyncio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


# --- LaunchDarkly calls --------------------------------------------------------------------------


def classify(entry: dict[str, Any]) -> str:
    path = str(entry.get("path") or "")
    if path.startswith("/api/v2/flags/"):
        return "flag"
    if path.startswith(("/api/v2/members", "/api/v2/roles", "/api/v2/teams", "/api/v2/caller-identity")):
        return "identity"
    if "/environments" in path:
        return "environments"
    return "other"


def call_counts(log: list[dict[str, Any]]) -> Counter[str]:
    return Counter(classify(entry) for entry in log)


# --- the phases ----------------------------------------------------------------------------------


@dataclass
class Results:
    app: str
    acks: dict[int, list[Round]] = field(default_factory=dict)
    cards_ok: dict[int, int] = field(default_factory=dict)
    card_latencies: list[float] = field(default_factory=list)  # under load (concurrency 20)
    card_latencies_alone: list[float] = field(default_factory=list)  # one at a time
    apply_latencies: list[float] = field(default_factory=list)
    calls_per_command: dict[str, float] = field(default_factory=dict)
    calls_per_apply: dict[str, float] = field(default_factory=dict)
    apply_outcomes: Counter[str] = field(default_factory=Counter)
    rss: list[tuple[int, float]] = field(default_factory=list)  # (commands so far, MB)
    rss_seconds: float = 0.0
    cpu_ms_per_command: dict[str, float] = field(default_factory=dict)  # in the RSS phase
    failures: list[str] = field(default_factory=list)

    def acked(self, concurrency: int) -> list[float]:
        return [x for r in self.acks.get(concurrency, []) for x in r.latencies]

    def per_second(self, concurrency: int) -> float:
        rounds = self.acks.get(concurrency, [])
        total = sum(len(r.latencies) for r in rounds)
        seconds = sum(r.seconds for r in rounds)
        return total / seconds if seconds else float("nan")


class Settler:
    """Waits, after each burst sent to flagops, for its cards (the bare app makes none)."""

    def __init__(self, bench: Stack, results: Results) -> None:
        self.bench, self.results, self.cards = bench, results, 0

    async def __call__(self, sent: int) -> None:
        if self.bench.app_name != "flagops":
            return
        self.cards += sent
        got = await wait_for_cards(self.bench, self.cards)
        if got < self.cards:
            self.results.failures.append(f"only {got} of {self.cards} cards arrived")
            self.cards = got


def pool(i: int) -> str:
    return f"C_LOAD_{i % CHANNELS:02d}"


async def run_apps(apps: list[str], args: argparse.Namespace) -> dict[str, Results]:
    """Both apps are up at once; their ack rounds take turns (bare, flagops, then flagops, bare...),
    each app idle (its cards made) while the other's round runs, so that what else the machine
    does at a moment weighs on both alike. The rest (cards, applies, RSS) is one app at a time."""
    extra_env = dict(item.split("=", 1) for item in args.env)
    workers = args.inbox == "workers"
    results = {app: Results(app) for app in apps}
    async with contextlib.AsyncExitStack() as stacks:
        benches: dict[str, Stack] = {}
        settlers: dict[str, Settler] = {}
        for app in apps:
            benches[app] = await stacks.enter_async_context(
                stack(
                    app,
                    latency=args.latency,
                    database_url=args.database_url,
                    extra_env=extra_env,
                    workers=workers,
                )
            )
            settlers[app] = Settler(benches[app], results[app])
        # Warm-up: connection pools, the role lookup, the environments, the code paths.
        for app in apps:
            await settlers[app](len((await burst(benches[app], args.warmup, 10, pool)).latencies))
        for concurrency, per_round in ((20, args.round_20), (100, args.round_100)):
            for turn in range(args.rounds):
                for app in apps if turn % 2 == 0 else list(reversed(apps)):
                    done = await burst(benches[app], per_round, concurrency, pool)
                    results[app].acks.setdefault(concurrency, []).append(done)
                    if set(done.statuses) != {200}:
                        results[app].failures.append(f"acks at {concurrency}: {dict(done.statuses)}")
                    await settlers[app](per_round)
        for app in apps:
            began = time.monotonic()
            await the_rest(benches[app], results[app], settlers[app], args)
            print(f"{app}: the rest done in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return results


async def the_rest(bench: Stack, results: Results, settle: Settler, args: argparse.Namespace) -> None:
    """Cards, applies (flagops), then RSS and CPU over the long run (both)."""
    if bench.app_name == "flagops":
        await cards_and_calls(bench, results, args)
        await applies(bench, results, args)
        settle.cards = (await bench.slack_counts())["chat.postMessage"]
    # RSS: commands in batches (each waits for its cards), RSS after each batch.
    began = time.monotonic()
    sent = 0
    results.rss.append((0, bench.app.rss_mb()))
    procs = {"app": bench.app, "LaunchDarkly sandbox": bench.sandbox, "fake Slack": bench.slack}
    if bench.worker is not None:
        procs["worker"] = bench.worker
    cpu_before = {name: proc.cpu_seconds() for name, proc in procs.items()}
    own_before = time.process_time()
    profiler = _py_spy(args.py_spy, bench.app) if args.py_spy else None
    while sent < (0 if args.skip_rss else args.rss_commands):
        batch = min(args.rss_batch, args.rss_commands - sent)
        await burst(bench, batch, 100, pool)
        await settle(batch)
        sent += batch
        results.rss.append((sent, bench.app.rss_mb()))
        if bench.app_name == "flagops":
            await bench.ld_log(clear=True)  # the sandbox's own log, not the app's memory
    results.rss_seconds = time.monotonic() - began
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    results.cpu_ms_per_command = {
        name: (proc.cpu_seconds() - cpu_before[name]) * 1000 / max(sent, 1) for name, proc in procs.items()
    }
    results.cpu_ms_per_command["load generator"] = (time.process_time() - own_before) * 1000 / max(sent, 1)
    if bench.app.popen.poll() is not None:
        results.failures.append(f"{bench.app_name} exited during the run; see its log")


def _py_spy(out: str, app: Proc) -> subprocess.Popen[bytes]:
    """py-spy recording the app's CPU during the long run (``--py-spy flame.svg`` or ``stacks.txt``;
    py-spy on PATH)."""
    binary = shutil.which("py-spy") or "py-spy"
    kind = "raw" if out.endswith(".txt") else "flamegraph"  # raw: collapsed stacks, one a line
    argv = [binary, "record", "-o", out, "-p", str(app.popen.pid), "-r", "100", "-f", kind]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def cards_and_calls(bench: Stack, results: Results, args: argparse.Namespace) -> None:
    """Command → card at concurrency 20 (one channel per command, to tell the cards apart), and
    LaunchDarkly calls per command."""
    await bench.ld_log(clear=True)
    count = args.card_commands
    before = (await bench.slack_counts())["chat.postMessage"]
    done = await burst(bench, count, 20, lambda i: f"C_CARD_{i:05d}")
    await wait_for_cards(bench, before + count)
    arrived = await bench.cards("C_CARD_")
    results.card_latencies = [arrived[c] - t for c, t in done.sent_at.items() if c in arrived]
    if len(arrived) < count:
        results.failures.append(f"command → card: {len(arrived)} of {count} cards")
    calls = call_counts(await bench.ld_log())
    results.calls_per_command = {kind: n / count for kind, n in calls.items()}


async def _wait_message(
    bench: Stack, channel: str, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in await bench.channel(channel):
            if match(row):
                return row
        await asyncio.sleep(0.01)
    return None


async def applies(bench: Stack, results: Results, args: argparse.Namespace) -> None:
    """One at a time: a command, its card, Apply, the outcome in the thread; LaunchDarkly calls
    counted from the click to the outcome."""
    calls: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        url = bench.app.url + "/slack/events"
        for i in range(args.applies):
            channel = f"C_APPLY_{i:04d}"
            text = "off new-checkout test" if i % 2 == 0 else "on new-checkout test"
            body = slash_command_body(
                command=COMMAND,
                text=text,
                user=USER,
                channel_id=channel,
                response_url=(await bench.response_urls(channel, 1))[0],
            )
            sent = time.monotonic()
            async with http.post(url, data=body, headers=sign(SECRET, body)) as response:
                await response.read()
            card = await _wait_message(bench, channel, lambda row: row["thread_ts"] is None)
            if card is None:
                results.failures.append(f"apply {i}: no card")
                if sum("no card" in f for f in results.failures) >= 3:
                    results.failures.append("applies: stopped after 3 commands without a card")
                    break
                continue
            results.card_latencies_alone.append(card["arrived"] - sent)
            message = Message(channel, card["ts"], card["text"], card["blocks"], card["user"])
            payload = block_actions_payload(
                user=USER,
                channel_id=channel,
                message=message,
                button=find_button(message, "Apply"),
                response_url=(await bench.response_urls(channel, 1))[0],
            )
            click = interaction_body(payload)
            await bench.ld_log(clear=True)
            clicked = time.monotonic()
            async with http.post(url, data=click, headers=sign(SECRET, click)) as response:
                await response.read()
            reply = await _wait_message(bench, channel, lambda row, ts=card["ts"]: row["thread_ts"] == ts)
            if reply is None:
                results.failures.append(f"apply {i}: no outcome in the thread")
                continue
            results.apply_latencies.append(reply["arrived"] - clicked)
            results.apply_outcomes[_outcome(reply["text"])] += 1
            await asyncio.sleep(0.05)  # let the card's last update land before counting
            calls.update(call_counts(await bench.ld_log()))
    applied = max(results.apply_outcomes["applied"], 1)
    results.calls_per_apply = {kind: n / applied for kind, n in calls.items()}


def _outcome(text: str) -> str:
    return "applied" if "Applied" in text else text[:60]


# --- the report ----------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b == b and b and a == a else "—"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value == value else "—"


def report(bare: Results, flagops: Results, args: argparse.Namespace) -> Iterator[str]:
    latency = args.latency
    rows: list[tuple[str, str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    for concurrency in (20, 100):
        b, f = bare.acked(concurrency), flagops.acked(concurrency)
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            bv, fv = percentile(b, q), percentile(f, q)
            ratio = fv / bv if bv == bv and bv else float("nan")
            target = ""
            if name == "p99":
                limit = TARGET_P99_RATIO[concurrency]
                target = f"≤ {limit}× {verdict(ratio <= limit)}"
            rows.append((f"ack {name} @ {concurrency}", _ms(bv), _ms(fv), _ratio(fv, bv), target))
        bps, fps = bare.per_second(concurrency), flagops.per_second(concurrency)
        target = (
            f"≥ {TARGET_ACKED_PER_S:.0f}/s {verdict(fps >= TARGET_ACKED_PER_S)}" if concurrency == 20 else ""
        )
        rows.append((f"acked/s @ {concurrency}", f"{bps:.0f}", f"{fps:.0f}", _ratio(fps, bps), target))
    card_limit = 2 * latency + TARGET_CARD_EXTRA
    for label, values in (
        ("command → card (one at a time)", flagops.card_latencies_alone),
        ("command → card @ 20", flagops.card_latencies),
    ):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        rows.append(
            (
                f"{label} p50/p99",
                "—",
                f"{_ms(p50)} / {_ms(p99)}",
                "",
                f"≤ {_ms(card_limit)} {verdict(p50 <= card_limit)} (p50)",
            )
        )
    apply_limit = latency + TARGET_APPLY_EXTRA
    p50, p99 = percentile(flagops.apply_latencies, 0.5), percentile(flagops.apply_latencies, 0.99)
    rows.append(
        (
            "Apply → outcome p50/p99",
            "—",
            f"{_ms(p50)} / {_ms(p99)}",
            "",
            f"≤ {_ms(apply_limit)} {verdict(p50 <= apply_limit)} (p50)",
        )
    )
    per_command = flagops.calls_per_command
    rows.append(("LD flag calls / command", "—", f"{per_command.get('flag', 0):.2f}", "", ""))
    rows.append(
        (
            "LD environment / identity+role / other calls / command",
            "—",
            f"{per_command.get('environments', 0):.2f} / {per_command.get('identity', 0):.2f} / "
            f"{per_command.get('other', 0):.2f}",
            "",
            "",
        )
    )
    per_apply = flagops.calls_per_apply
    flag_calls = per_apply.get("flag", 0.0)
    rows.append(
        (
            "LD flag calls / applied change (after the card)",
            "—",
            f"{flag_calls:.2f}",
            "",
            f"≤ {TARGET_FLAG_CALLS_PER_APPLY:.0f} {verdict(flag_calls <= TARGET_FLAG_CALLS_PER_APPLY)}",
        )
    )
    rows.append(
        (
            "LD environment / identity+role / other calls / applied change",
            "—",
            f"{per_apply.get('environments', 0):.2f} / {per_apply.get('identity', 0):.2f} / "
            f"{per_apply.get('other', 0):.2f}",
            "",
            "",
        )
    )
    b_rss, f_rss = bare.rss, flagops.rss
    if b_rss and f_rss:
        warm_index = min(2, len(f_rss) - 1)
        f_final, b_final = f_rss[-1][1], b_rss[-1][1]
        growth = f_final - f_rss[warm_index][1]
        rows.append(
            (
                f"RSS after {f_rss[-1][0]:,} commands",
                f"{b_final:.0f} MB",
                f"{f_final:.0f} MB",
                _ratio(f_final, b_final),
                f"≤ {TARGET_RSS_MB:.0f} MB {verdict(f_final <= TARGET_RSS_MB)}",
            )
        )
        rows.append(
            (
                f"RSS growth since {f_rss[warm_index][0]:,} commands",
                f"{b_final - b_rss[warm_index][1]:+.0f} MB",
                f"{growth:+.0f} MB",
                "",
                "flat",
            )
        )
    widths = [
        max(len(r[i]) for r in [*rows, ("", "bare Bolt", "flagops", "ratio", "target")]) for i in range(5)
    ]
    header = ("", "bare Bolt", "flagops", "ratio", "target")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
    yield ""
    yield (
        "flagops RSS by commands sent: "
        + ", ".join(f"{n:,}: {mb:.0f} MB" for n, mb in flagops.rss)
        + f" ({flagops.rss_seconds:.0f} s)"
    )
    for results in (bare, flagops):
        if results.cpu_ms_per_command:
            spent = ", ".join(f"{k} {v:.1f}" for k, v in results.cpu_ms_per_command.items())
            per_s = results.rss[-1][0] / results.rss_seconds if results.rss_seconds else float("nan")
            yield (
                f"{results.app}, {results.rss[-1][0]:,} commands at concurrency 100, each batch waiting "
                f"for its cards: {per_s:.0f} commands/s; CPU ms per command: {spent}"
            )
    yield "Apply outcomes: " + ", ".join(f"{k}: {v}" for k, v in flagops.apply_outcomes.items())
    for results in (bare, flagops):
        for failure in results.failures:
            yield f"{results.app}: {failure}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="flagops beside a bare Bolt app, under load")
    parser.add_argument(
        "--database-url", default=None, help="flagops' database (default: SQLite in a temp dir)"
    )
    parser.add_argument("--latency", type=float, default=0.2, help="LaunchDarkly's answer time, seconds")
    parser.add_argument("--rounds", type=int, default=4, help="ack rounds per concurrency, each app")
    parser.add_argument("--round-20", type=int, default=150, help="commands per round at concurrency 20")
    parser.add_argument("--round-100", type=int, default=500, help="commands per round at concurrency 100")
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--card-commands", type=int, default=100)
    parser.add_argument("--applies", type=int, default=20)
    parser.add_argument("--rss-commands", type=int, default=10_000)
    parser.add_argument("--rss-batch", type=int, default=1000)
    parser.add_argument("--only", choices=["bare", "flagops"], default=None)
    parser.add_argument(
        "--inbox",
        choices=["web", "workers"],
        default=None,
        help="flagops' FLAGOPS_INBOX (default: the bot's own); workers: one `python -m bot worker` too",
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for flagops (repeatable)")
    parser.add_argument(
        "--py-spy", default=None, help="record the app with py-spy during the long run (an SVG)"
    )
    parser.add_argument("--skip-rss", action="store_true", help="leave out the long run (10,000 commands)")
    parser.add_argument("--quick", action="store_true", help="a handful of requests: checks the bench runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.round_20, args.round_100, args.warmup = 1, 20, 100, 5
        args.card_commands, args.applies, args.rss_commands, args.rss_batch = 10, 2, 200, 100
    apps = [args.only] if args.only else ["bare", "flagops"]
    loads = os.getloadavg()
    found = asyncio.run(run_apps(apps, args))
    empty = Results("none")
    print(
        f"load average during the run (other work on the machine): {loads[0]:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at the end (2 would be this bench alone, on 2 cores)"
    )
    print(
        f"LaunchDarkly latency {args.latency * 1000:.0f} ms · database "
        f"{'SQLite' if not args.database_url else args.database_url.split('://', 1)[0]} · "
        f"{os.cpu_count()} cores · python {sys.version.split()[0]} · "
        f"FLAGOPS_INBOX={args.inbox or 'default'}" + "".join(f" · {item}" for item in args.env)
    )
    for line in report(found.get("bare", empty), found.get("flagops", empty), args):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
