"""A fake of Slack's Socket Mode on loopback: ``apps.connections.open`` and the WebSocket behind it.

How Slack does it, and so this fake:

- ``apps.connections.open``, called with the app-level token (``xapp-…``; a bot token is refused
  with ``not_allowed_token_type``), answers a one-time WebSocket URL (here ``ws://127.0.0.1…``);
- on connect the server sends ``{"type": "hello", …}``; then envelopes: ``{"type":
  "slash_commands" | "interactive" | "events_api", "envelope_id", "payload",
  "accepts_response_payload", "retry_attempt", "retry_reason"}``;
- the app acknowledges each by ``envelope_id`` (``{"envelope_id": …}``, with a ``payload`` where
  the ack carries one: a modal's ``response_action``, an options list); an envelope not acked is
  sent again later with ``retry_attempt`` > 0;
- the server may send ``{"type": "disconnect", "reason": "refresh_requested" | "warning" | …}``
  and close the socket, or drop it without a word; the app reconnects through a new
  ``apps.connections.open``.

The server is an aiohttp web app (aiohttp is already a dependency of slack_sdk's Socket Mode
client). :class:`FakeSocketMode` is attached to a :class:`bot.offline.fake_slack.FakeSlack`, which
answers ``apps.connections.open`` through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

HELLO_APP_ID = "A_FLAGOPS"


class SocketRefused(Exception):
    """``apps.connections.open`` refused (``error`` is Slack's code)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class Envelope:
    """One envelope sent to the app, and its acknowledgement once the app sent it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    retry_attempt: int
    connection: int
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    ack: dict[str, Any] | None = None


@dataclass
class _Connection:
    number: int
    socket: web.WebSocketResponse


class FakeSocketMode:
    """Slack's Socket Mode, on loopback. Serve it with :meth:`serving`; attach it to a fake Slack.

    Args:
        app_tokens: the accepted app-level tokens; None accepts any ``xapp-`` token.
    """

    def __init__(self, *, app_tokens: set[str] | None = None) -> None:
        self.app_tokens = app_tokens
        self.base_url: str | None = None
        """``ws://127.0.0.1:<port>`` while served."""
        self.opens = 0
        """How many URLs ``apps.connections.open`` handed out."""
        self.hellos = 0
        """How many connections were greeted (one per successful connect or reconnect)."""
        self.envelopes: list[Envelope] = []
        self.unknown_acks: list[dict[str, Any]] = []
        """Messages from the app naming no envelope that was sent."""
        self._tickets: set[str] = set()
        self._live: list[_Connection] = []
        self._numbers = itertools.count(1)
        self._greeted = asyncio.Condition()

    # --- apps.connections.open ------------------------------------------------------------------

    def open_connection(self, token: str | None) -> str:
        """A one-time WebSocket URL for the app token ``token``.

        Raises:
            SocketRefused: no token (``not_authed``), a token that is not an app-level one
                (``not_allowed_token_type``), an unknown one (``invalid_auth``), or not served.
        """
        if not token:
            raise SocketRefused("not_authed")
        if not token.startswith("xapp-"):
            raise SocketRefused("not_allowed_token_type")
        if self.app_tokens is not None and token not in self.app_tokens:
            raise SocketRefused("invalid_auth")
        if self.base_url is None:
            raise SocketRefused("internal_error")
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        self.opens += 1
        return f"{self.base_url}/link/?ticket={ticket}&app_id={HELLO_APP_ID}"

    # --- serving --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Serve the WebSocket endpoint on a free loopback port; yields ``ws://127.0.0.1:<port>``."""
        app = web.Application()
        app.router.add_get("/link/", self._link)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the server's sockets
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"ws://127.0.0.1:{port}"
        try:
            yield self.base_url
        finally:
            for connection in list(self._live):
                await connection.socket.close()
            await runner.cleanup()
            self.base_url = None

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # a URL is good for one connection, as Slack's are
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        connection = _Connection(next(self._numbers), socket)
        self._live.append(connection)
        await socket.send_json(
            {
                "type": "hello",
                "num_connections": len(self._live),
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": HELLO_APP_ID},
            }
        )
        async with self._greeted:
            self.hellos += 1
            self._greeted.notify_all()
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._acked(message.data)
        finally:
            if connection in self._live:
                self._live.remove(connection)
        return socket

    def _acked(self, data: str) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            self.unknown_acks.append({"raw": data})
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        for envelope in self.envelopes:
            if envelope.envelope_id == envelope_id and not envelope.acked.is_set():
                envelope.ack = message
                envelope.acked.set()
                return
        self.unknown_acks.append(message if isinstance(message, dict) else {"raw": data})

    # --- what a test does -------------------------------------------------------------------------

    @property
    def connected(self) -> int:
        """How many sockets are open now."""
        return len(self._live)

    async def wait_for_hellos(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` connections in all have been greeted (the first, then reconnects)."""
        async with asyncio.timeout(timeout), self._greeted:
            await self._greeted.wait_for(lambda: self.hellos >= count and bool(self._live))

    async def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str | None = None,
        envelope_id: str | None = None,
    ) -> Envelope:
        """Send one envelope on the newest open connection (without waiting for the ack).

        Raises:
            ConnectionError: no connection is open.
        """
        if not self._live:
            raise ConnectionError("no Socket Mode connection is open")
        connection = self._live[-1]
        envelope = Envelope(envelope_id or str(uuid.uuid4()), kind, payload, retry_attempt, connection.number)
        self.envelopes.append(envelope)
        message: dict[str, Any] = {
            "envelope_id": envelope.envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason or ("timeout" if retry_attempt else ""),
        }
        await connection.socket.send_str(json.dumps(message))
        return envelope

    async def deliver(
        self, kind: str, payload: dict[str, Any], *, timeout: float = 5.0, **options: Any
    ) -> dict[str, Any]:
        """Send an envelope and wait for the app's ack; returns the ack.

        Raises:
            TimeoutError: not acked within ``timeout`` (Slack would send it again).
        """
        envelope = await self.send(kind, payload, **options)
        async with asyncio.timeout(timeout):
            await envelope.acked.wait()
        assert envelope.ack is not None
        return envelope.ack

    async def disconnect(self, reason: str = "refresh_requested", *, close: bool = True) -> None:
        """Send ``disconnect`` on every open connection (``warning``: only warn), then close them."""
        for connection in list(self._live):
            await connection.socket.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )
            if close:
                await connection.socket.close()

    async def drop(self) -> None:
        """Close every open socket without a word (a network failure, a Slack restart)."""
        for connection in list(self._live):
            await connection.socket.close()


# --- Slack's HTTP requests as Socket Mode envelopes ------------------------------------------------

# The Socket Mode client's tasks that live as long as a connection does (not "work" to wait for).
_CONNECTION_TASKS = frozenset({"receive_messages", "monitor_current_session", "process_messages"})


def envelope_of(body: bytes) -> tuple[str, dict[str, Any]]:
    """The envelope type and payload Slack sends over the socket for what it would POST over HTTP:
    a slash command's form fields as an object; an interaction's ``payload`` field, decoded."""
    fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    if "payload" in fields:
        payload = json.loads(fields["payload"])
        return "interactive", payload if isinstance(payload, dict) else {}
    return "slash_commands", fields


def is_connection_task(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` runs for as long as a socket does: the client's receive, monitor and
    message loops, and this fake's side of each connection."""
    name = getattr(task.get_coro(), "__qualname__", "")
    method = name.rpartition(".")[2]
    return method in _CONNECTION_TASKS or name.startswith(("RequestHandler.", "FakeSocketMode."))
