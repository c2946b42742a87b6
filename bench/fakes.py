"""The benchmark's fake Slack as a process of its own: ``python bench/fakes.py --port P --token T``.

It serves :class:`bot.offline.fake_slack.FakeSlack` (the same fake the tests and the console use)
and a few ``/_bench/`` routes the load generator reads, so that neither app under test shares an
event loop or a CPU-bound validator with the load generator:

* ``POST /_bench/response_urls`` ``{"channel", "user", "count"}``: that many fresh response URLs;
* ``GET /_bench/counts``: Web API calls answered so far, by method (``chat.postMessage`` ...);
* ``GET /_bench/cards?prefix=C_X``: per channel whose id starts with the prefix, when its first
  top-level message arrived (``time.monotonic()``, which is one clock for every process here);
* ``GET /_bench/channel/{id}``: the channel's messages with their arrival times (to click a card's
  button, and to see when its thread reply came).

The fake keeps every message (cards must be clickable); its log of raw calls is dropped as it goes,
so that a run of 10,000 commands does not grow it without need.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.offline.fake_slack import FakeSlack


class BenchSlack:
    """The fake Slack, plus when each message arrived."""

    def __init__(self, token: str) -> None:
        self.fake = FakeSlack(tokens={token})
        self.arrived: dict[tuple[str, str], float] = {}
        self.counts: Counter[str] = Counter()

    def asgi(self) -> ASGIApp:
        recorder = _Recorder(self.fake.app, self)
        return Starlette(
            routes=[
                Route("/_bench/response_urls", self.response_urls, methods=["POST"]),
                Route("/_bench/counts", self.count_calls, methods=["GET"]),
                Route("/_bench/cards", self.cards, methods=["GET"]),
                Route("/_bench/channel/{channel}", self.channel, methods=["GET"]),
                Mount("/", app=recorder),
            ]
        )

    async def response_urls(self, request: Request) -> Response:
        body = await request.json()
        urls = [
            self.fake.new_response_url(str(body["channel"]), str(body["user"]))
            for _ in range(int(body.get("count", 1)))
        ]
        return JSONResponse({"urls": urls})

    async def count_calls(self, _request: Request) -> Response:
        return JSONResponse(dict(self.counts))

    async def cards(self, request: Request) -> Response:
        prefix = request.query_params.get("prefix", "")
        first: dict[str, float] = {}
        for message in self.fake.all_messages():
            if message.channel.startswith(prefix) and message.thread_ts is None:
                at = self.arrived.get((message.channel, message.ts))
                if at is not None and message.channel not in first:
                    first[message.channel] = at
        return JSONResponse(first)

    async def channel(self, request: Request) -> Response:
        channel = request.path_params["channel"]
        rows = [
            {
                "channel": m.channel,
                "ts": m.ts,
                "text": m.text,
                "blocks": m.blocks,
                "user": m.user,
                "thread_ts": m.thread_ts,
                "edits": m.edits,
                "arrived": self.arrived.get((m.channel, m.ts)),
            }
            for m in self.fake.all_messages()
            if m.channel == channel
        ]
        return JSONResponse(rows)


class _Recorder:
    """Notes when each ``chat.postMessage`` arrived and counts every Web API call."""

    def __init__(self, app: ASGIApp, bench: BenchSlack) -> None:
        self.app = app
        self.bench = bench

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method = path.removeprefix("/api/") if path.startswith("/api/") else "response_url"
        arrived = time.monotonic()
        chunks: list[bytes] = []
        status = {"code": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            elif message["type"] == "http.response.body" and method == "chat.postMessage":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, sending)
        self.bench.fake.calls.clear()  # not read here; would only grow
        answer: dict[str, Any] = {}
        if chunks:
            try:
                answer = json.loads(b"".join(chunks))
            except ValueError:
                answer = {}
        ok = status["code"] == 200 and (method == "response_url" or bool(answer.get("ok", True)))
        self.bench.counts[method if ok else f"{method} (failed)"] += 1
        if method == "chat.postMessage" and answer.get("ok"):
            self.bench.arrived[(str(answer["channel"]), str(answer["ts"]))] = arrived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    bench = BenchSlack(args.token)
    bench.fake.base_url = f"http://127.0.0.1:{args.port}"
    uvicorn.run(bench.asgi(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
