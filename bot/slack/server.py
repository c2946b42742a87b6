"""Serving the bot: an ASGI app (``POST /slack/events``, ``GET /healthz``) under uvicorn, or Socket
Mode when ``SLACK_APP_TOKEN`` is set.

:class:`Runtime` is everything one bot process holds (store, LaunchDarkly client, Slack client,
Bolt app), opened once: migrations run first. :func:`create_web_app` serves a runtime, opening it in
the ASGI lifespan when not given one. :func:`serve_in_loop` runs an ASGI app on a loopback port
inside the current event loop (the offline console and the tests use it, so the bot's background
work shares their loop and can be waited for).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import logging
import signal
import socket
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.config import OAUTH_CALLBACK_PATH, WEBHOOK_PATH, Settings, configure_logging
from bot.launchdarkly.client import LaunchDarklyClient
from bot.lifecycle.service import ChangeService
from bot.persistence.db import migrate
from bot.persistence.store import Store
from bot.scheduling.scheduler import FlagopsScheduler
from bot.slack.app import Feature, build_app
from bot.slack.client import FlagopsWebClient, make_slack_client
from bot.slack.messenger import Messenger, SlackFailure
from bot.slack.socket_mode import FlagopsSocketModeHandler, socket_mode_handler
from bot.wiring import Services, build_services, open_ld
from commands.errors import FlagopsError

log = logging.getLogger("flagops.server")

EVENTS_PATH = "/slack/events"
SWEEP_SECONDS = 15.0
SERVER_TASK_PREFIX = "flagops-server:"
"""Names of the tasks :func:`serve_in_loop` runs servers in (idle checks leave them out)."""
HEALTH_PATH = "/healthz"


@dataclass
class Runtime:
    """What one bot process holds, opened once and shared by every request."""

    services: Services
    slack: AsyncWebClient
    bolt: AsyncApp
    handler: AsyncSlackRequestHandler
    scheduler: FlagopsScheduler
    """Due jobs, reminders, card expiry; ticking only when ``FLAGOPS_SCHEDULER=on``."""

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def ld(self) -> LaunchDarklyClient:
        return self.services.ld

    @property
    def changes(self) -> ChangeService:
        return self.services.changes

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        features: list[Feature] | None = None,
        slack_client: AsyncWebClient | None = None,
        ld_client: LaunchDarklyClient | None = None,
        work_inbox: bool = False,
    ) -> Runtime:
        """Migrate the database (unless ``FLAGOPS_MIGRATE_ON_START=false``), then build the clients,
        the services (``bot.wiring``) and the Bolt app.

        Args:
            settings: the bot's settings.
            features: the features to register (default ``bot.slack.app.FEATURES``).
            slack_client: a Web API client to use instead of one built from ``settings``.
            ld_client: a LaunchDarkly client to use instead of one built from ``settings``.
            work_inbox: run the inbox's loop even where ``FLAGOPS_INBOX=workers`` (a worker).

        Returns:
            The runtime; ``await runtime.close()`` when done.
        """
        if settings.flagops_migrate_on_start:
            await migrate(settings.database_url)
        store = Store.from_url(settings.database_url)
        slack = slack_client or make_slack_client(settings, pooled=True)
        services = build_services(
            settings, store=store, ld=ld_client or open_ld(settings), messenger=Messenger.of(slack, settings)
        )
        bolt = build_app(services, slack_client=slack, features=features)
        # Built always (tests drive run_due(now) by hand); ticks only where FLAGOPS_SCHEDULER=on.
        scheduler = FlagopsScheduler.of(services)
        if settings.flagops_scheduler == "on":
            scheduler.start()
        if settings.flagops_inbox == "web" or work_inbox:
            # The inbox's loop: rows left by a process that stopped, rows that waited for their card.
            services.inbox.start()
        return cls(services, slack, bolt, AsyncSlackRequestHandler(bolt), scheduler)

    async def close(self) -> None:
        """Stop the scheduler and the inbox's loop, let the rows being worked and the writes in
        flight finish (``FLAGOPS_SHUTDOWN_GRACE``), then close the LaunchDarkly connection pool and
        the database pool."""
        await self.scheduler.stop()
        # The inbox keeps renewing the leases of the rows still being worked until the drain ends.
        await self.services.inbox.stop(drain=self.changes.drain)
        await self.ld.aclose()
        if isinstance(self.slack, FlagopsWebClient):
            await self.slack.aclose()
        await self.store.close()


def settle_memory() -> None:
    """Once a serving process is ready: collect, then freeze what start-up made (the imports, the
    app, the services, all kept for the process's life), so that the garbage collector never
    scans it again. Its full collections otherwise walk all of it, pausing the event loop (and
    every ack waiting on it) under load (bench/README.md)."""
    gc.collect()
    gc.freeze()


def create_web_app(settings: Settings, *, runtime: Runtime | None = None, settle: bool = False) -> Starlette:
    """The ASGI app Slack talks to.

    Args:
        settings: the bot's settings.
        runtime: an opened runtime to serve (its owner closes it); when None, the app's lifespan
            opens one at start (running migrations) and closes it at shutdown.
        settle: the app is the process's whole life (``python -m bot``): once its runtime is
            open, :func:`settle_memory` (not in a test process, whose objects come and go).

    Returns:
        A starlette app with ``POST /slack/events`` (Bolt verifies the signature and answers 401
        when it is wrong or stale) and ``GET /healthz``.
    """
    holder: dict[str, Runtime] = {"runtime": runtime} if runtime is not None else {}

    secret = settings.slack_signing_secret.get_secret_value()

    async def events(request: Request) -> Response:
        current = holder.get("runtime")
        if current is None:
            return PlainTextResponse("starting", status_code=503)
        # Verified here, before Bolt parses anything: a request whose signature fails, or whose
        # headers cannot even be checked (a timestamp that is not a number, a non-ASCII
        # signature), is a 401 and nothing else: no listener, no error handler, nothing sent.
        body = await request.body()
        if not verified(secret, request.headers, body):
            return PlainTextResponse("invalid request", status_code=401)
        try:
            return await current.handler.handle(request)
        except ValueError:  # a signed body Bolt cannot parse (e.g. a payload that is not JSON)
            log.warning("a signed Slack request could not be parsed")
            return PlainTextResponse("bad request", status_code=400)

    async def healthz(_request: Request) -> Response:
        ready = "runtime" in holder
        return JSONResponse({"ok": ready}, status_code=200 if ready else 503)

    async def oauth_callback(request: Request) -> Response:
        current = holder.get("runtime")
        if current is None:
            return PlainTextResponse("starting", status_code=503)
        return await connect_callback(current.services, request)

    async def webhook(request: Request) -> Response:
        current = holder.get("runtime")
        if current is None:
            return PlainTextResponse("starting", status_code=503)
        return await launchdarkly_webhook(current.services, request)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if runtime is not None:
            yield
            return
        opened = await Runtime.open(settings)
        holder["runtime"] = opened
        if settle:
            settle_memory()
        log.info("flagops is ready: Slack events at %s", EVENTS_PATH)
        try:
            yield
        finally:
            holder.pop("runtime", None)
            await opened.close()

    return Starlette(
        routes=[
            Route(EVENTS_PATH, events, methods=["POST"]),
            Route(HEALTH_PATH, healthz, methods=["GET"]),
            Route(OAUTH_CALLBACK_PATH, oauth_callback, methods=["GET"]),
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


async def connect_callback(services: Services, request: Request) -> Response:
    """``GET /oauth/launchdarkly/callback``: where LaunchDarkly sends a person back after Connect.

    The page says in plain words whether the account is connected; the person is also told in
    Slack, and a click that needed the connection (an approval card's button) is carried out now.
    Nothing from the request is echoed but through HTML escaping; no token appears anywhere.
    """
    query = request.query_params
    result = await services.accounts.complete_connect(
        query.get("state", ""), query.get("code"), query.get("error")
    )
    if result.ok and result.pending is not None and result.pending.resume:
        try:
            await services.approvals.resume(result.pending)
        except (FlagopsError, SlackFailure) as error:
            log.warning("resuming after a connect failed: %s", type(error).__name__)
    page = (
        "<!doctype html><meta charset='utf-8'><title>flagops</title>"
        f"<h1>{'Connected' if result.ok else 'Not connected'}</h1><p>{html.escape(result.page)}</p>"
    )
    return HTMLResponse(page, status_code=200 if result.ok else 400)


async def launchdarkly_webhook(services: Services, request: Request) -> Response:
    """``POST /launchdarkly/webhook``: an audit log entry from LaunchDarkly, signed with the webhook's
    secret (``X-LD-Signature``); anything else is a 401 with nothing done (``bot.subscriptions``)."""
    body = await request.body()
    status = await services.subscriptions.receive_webhook(request.headers.get("x-ld-signature"), body)
    words = {200: "ok", 400: "not an audit log entry", 401: "invalid signature"}
    return PlainTextResponse(words.get(status, "error"), status_code=status)


def verified(secret: str, headers: Any, body: bytes, *, now: float | None = None) -> bool:
    """Whether a request carries Slack's valid, fresh signature (``v0=HMAC(v0:ts:body)``).

    Never raises: any header that cannot be read as Slack sends it means "not verified".
    """
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not isinstance(timestamp, str) or not isinstance(signature, str):
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or not signature.isascii():
        return False
    try:
        return SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeError):
        return False


def run_server(settings: Settings) -> int:
    """Serve until stopped: Socket Mode when ``SLACK_APP_TOKEN`` is set, else HTTP on ``PORT``.

    Args:
        settings: the bot's settings.

    Returns:
        The exit status (0 after a clean stop).
    """
    configure_logging()
    if settings.slack_app_token is not None:
        asyncio.run(_until_signalled(run_socket_mode(settings)))
        return 0
    uvicorn.run(
        create_web_app(settings, settle=True),
        host="0.0.0.0",  # a web process listens on every interface of its container
        port=settings.port,
        proxy_headers=True,
        log_level="info",
        # An access log line holds the query string: the OAuth callback's code and state.
        access_log=False,
    )
    return 0


def run_worker(settings: Settings) -> int:
    """``python -m bot worker``: work the inbox (rows the web processes wrote and acked) until
    SIGTERM or SIGINT, then let the rows being worked finish (``FLAGOPS_SHUTDOWN_GRACE``).

    Any number of workers may run against one Postgres (``LISTEN flagops_inbox`` wakes them); set
    ``FLAGOPS_INBOX=workers`` on the web processes so that they only write and ack.

    Returns:
        The exit status (0 after a clean stop).
    """
    configure_logging()
    asyncio.run(_until_signalled(work_inbox(settings)))
    return 0


async def work_inbox(settings: Settings) -> None:
    """Open a runtime (the same services and handlers as the web process) and work its inbox until
    cancelled."""
    runtime = await Runtime.open(settings, work_inbox=True)
    settle_memory()
    try:
        log.info("inbox worker %s is ready", runtime.services.inbox.owner)
        await asyncio.Event().wait()
    finally:
        await runtime.close()
        log.info("inbox worker stopped")


async def _until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until SIGTERM or SIGINT cancels it: its ``finally`` (the drain of the writes in
    flight, closing the socket) runs, as uvicorn's shutdown does for the HTTP process."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_socket_mode(settings: Settings) -> None:
    """Serve Slack over Socket Mode (no public URL needed) until cancelled.

    ``GET /healthz`` is served on ``PORT`` beside the socket, so platforms can health-check the
    process (it says whether the socket is connected; a reconnect is brief, so it stays 200).

    Args:
        settings: the bot's settings (``SLACK_APP_TOKEN`` must be set).
    """
    runtime = await Runtime.open(settings)
    handler = socket_mode_handler(runtime.bolt, settings)
    settle_memory()
    try:
        async with serve_in_loop(
            create_health_app(handler, runtime.services), host="0.0.0.0", port=settings.port
        ):
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("Socket Mode connected; flagops is ready (health on port %s)", settings.port)
            await asyncio.Event().wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await runtime.close()
        log.info("Socket Mode connection closed; flagops stopped")


def create_health_app(handler: FlagopsSocketModeHandler, services: Services) -> Starlette:
    """The HTTP side of a Socket Mode process: ``GET /healthz``, and the OAuth callback and
    LaunchDarkly's webhook (``POST /launchdarkly/webhook``) where ``FLAGOPS_PUBLIC_URL`` is set
    (Slack's events come over the socket: nothing here takes them)."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True, "socket": "connected" if handler.connected else "reconnecting"})

    async def oauth_callback(request: Request) -> Response:
        return await connect_callback(services, request)

    async def webhook(request: Request) -> Response:
        return await launchdarkly_webhook(services, request)

    routes = [Route(HEALTH_PATH, healthz, methods=["GET"])]
    if services.settings.flagops_public_url:
        routes.append(Route(OAUTH_CALLBACK_PATH, oauth_callback, methods=["GET"]))
        routes.append(Route(WEBHOOK_PATH, webhook, methods=["POST"]))
    return Starlette(routes=routes)


class _InLoopServer(uvicorn.Server):
    """uvicorn inside someone else's event loop: the loop's owner handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn calls sys.exit() when the lifespan or the bind fails; inside a shared loop that
        # SystemExit would stop the whole loop, so it becomes an ordinary error of this task.
        try:
            await super().startup(sockets)
        except SystemExit as exc:
            raise RuntimeError(f"the server could not start (uvicorn exit status {exc.code})") from None

    async def main_loop(self) -> None:
        # uvicorn looks at should_exit every 100 ms; a loopback server (the console's, a test's) is
        # stopped often and should go at once. on_tick still runs: uvicorn's date header and limits.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(_TICK)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # As uvicorn's, without its fixed 100 ms pauses: stop accepting, ask each connection to
        # close after its response, wait (briefly polled) for them and their tasks, then the lifespan.
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = asyncio.get_running_loop().time() + _GRACE
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            if asyncio.get_running_loop().time() > deadline:
                for task in self.server_state.tasks:
                    task.cancel(msg="loopback server stopped")
                break
            await asyncio.sleep(_TICK)
        if not self.force_exit:
            await self.lifespan.shutdown()


_TICK = 0.005  # seconds between looks at should_exit, and at the connections left while stopping
_GRACE = 10.0  # seconds a loopback server waits for the requests in flight when stopped


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve_in_loop(
    app: Any, *, port: int | None = None, lifespan: bool = False, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """Serve an ASGI app in the current event loop (on loopback unless ``host`` says otherwise).

    Args:
        app: the ASGI app.
        port: the port (a free one by default).
        host: the address to listen on (``0.0.0.0``: a Socket Mode process's health check).
        lifespan: run the app's lifespan (off by default: the caller opens and closes what the
            app needs, as the console and the tests do with a :class:`Runtime`).

    Yields:
        The base URL, without a trailing slash.

    Raises:
        RuntimeError: the server did not start within 10 seconds.
    """
    port = port or free_port()
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on" if lifespan else "off"
    )
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve(), name=f"{SERVER_TASK_PREFIX}{port}")
    try:
        for _ in range(5000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.002)  # started within 2 ms of being up; gives up after 10 s
        if not server.started:
            if task.done() and task.exception() is not None:
                raise RuntimeError(f"the server on port {port} did not start") from task.exception()
            raise RuntimeError(f"the server on port {port} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(RuntimeError):  # a failed start was reported above
            await task
