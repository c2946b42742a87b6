"""The benchmark's yardstick: a bare Bolt ``AsyncApp`` that only acks, served like flagops.

``python bench/bare_bolt.py`` reads the same environment as ``python -m bot`` (``PORT``,
``SLACK_SIGNING_SECRET``, ``SLACK_BOT_TOKEN``, ``SLACK_API_URL``, ``FLAGOPS_COMMAND``) and is
started the same way: one process, uvicorn (same options as ``bot.slack.server.run_server``),
starlette with Bolt's request handler at ``POST /slack/events``, ``GET /healthz``, logging at INFO.
The slash command's listener calls ``ack()`` and nothing else; a button's too.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create() -> Starlette:
    api = os.environ.get("SLACK_API_URL")
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=f"{api}/" if api else None)
    app = AsyncApp(
        name="bare",
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=client,
        process_before_response=False,
        logger=logging.getLogger("bare.bolt"),
    )

    @app.command(os.environ.get("FLAGOPS_COMMAND", "/flag"))
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()

    @app.action(re.compile(".*"))
    async def on_action(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create(),
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "3000")),
        proxy_headers=True,
        log_level="info",
        access_log=False,
    )


if __name__ == "__main__":
    main()
