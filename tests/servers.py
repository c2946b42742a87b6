"""Serve an ASGI app on a real loopback socket, for synchronous tests.

Tests talk to the sandbox, the bot and the fake Slack Web API over real HTTP, as production does.
There is one launcher, :func:`bot.slack.server.serve_in_loop` (async tests and the console run it
in their own event loop); :func:`serve_asgi` runs it in an event loop of its own, in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from bot.slack.server import free_port, serve_in_loop

__all__ = ["free_port", "serve_asgi"]


@contextlib.contextmanager
def serve_asgi(app: Any, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with :func:`serve_in_loop` in a background thread; yield its base URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    found: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        found["stop"] = stop
        try:
            async with serve_in_loop(app, port=port) as url:
                found["url"] = url
                started.set()
                await stop.wait()
        except (OSError, RuntimeError) as exc:  # a failed start, reported to the test's thread below
            found["error"] = exc
            started.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="serve_asgi", daemon=True)
    thread.start()
    if not started.wait(10) or "error" in found:
        raise RuntimeError("the server did not start") from found.get("error")
    try:
        yield str(found["url"])
    finally:
        loop.call_soon_threadsafe(found["stop"].set)
        thread.join(timeout=10)
        loop.close()
