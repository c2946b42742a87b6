"""The durable inbox: nothing lost between the ack and the card.

A listener verifies (Bolt's middleware, after the front door's signature check), writes the
accepted slash command or click to the ``inbox`` table (one ``INSERT``, :meth:`Inbox.accept`), and
acks. Then a worker takes the row by compare-and-set (``pending → working → done``, under its
lease), runs the handler the feature registered for it (:meth:`Inbox.handle`), and marks it done.

- **Where rows are worked.** ``FLAGOPS_INBOX=web`` (the default): the web process itself, so
  ``python -m bot`` still does everything on one machine. After the ack, the listener starts a
  task that takes its own row and works it at once, and returns (Bolt answers Slack then); a
  background loop (:meth:`Inbox.start`) takes whatever is left: rows of a process that died
  (after their lease), rows that waited for an earlier row of their card.
  ``FLAGOPS_INBOX=workers``: the web process only writes and acks, and ``python -m bot worker``
  processes (any number, against one Postgres) work the rows, woken by ``LISTEN flagops_inbox``
  (a trigger notifies each new row); on SQLite they poll.
- **One delivery, one row.** Slack's retries (``X-Slack-Retry-Num``, Socket Mode's
  ``retry_attempt``) and replays carry the same payload: its ``trigger_id`` (else ``action_ts`` /
  ``event_id``) makes the row's unique ``delivery_key``; the second ``INSERT`` does nothing and is
  acked only.
- **A worker that died.** Its rows' leases (``FLAGOPS_INBOX_LEASE``, renewed while it works, and
  while it stops until its clicks are drained) expire and another worker takes them over. Before
  a row's first ``chat.postMessage`` it records ``posting_at`` (a compare-and-set on the worker
  *and its take number*, ``attempts``, that fails when the row is no longer held by this take,
  even when the same process took it again after its lease ran out: then it does not post,
  unless it already sent LaunchDarkly a write, whose outcome is always reported), after it the
  ``ts``. A row taken over with a ``ts`` is done (its card is up); one with ``posting_at`` and no
  ``ts`` may or may not have posted: it is not run again (never two cards), and the person is
  told to run the command again if no card appeared. One taken over before it posted is run
  again from the start only when that cannot do anything twice (:func:`reruns_safely`: it only
  reads and proposes, or its write is the change's compare-and-set); else the person is told it
  may or may not have been done, and where to check.
- **Order per card.** A click's row carries its card (``<channel>:<message ts>``); the row that
  posted a card gets the same key when it records the ``ts``. A row is not taken while an earlier
  row of its card is not done, so a click never runs before its card's proposal is stored, and two
  clicks on one card run in the order Slack sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.inbox.store import InboxRow, InboxStore, NotKept, card_key
from bot.launchdarkly.client import WRITE_WATCH
from bot.persistence.db import urgent_writes
from bot.slack import blocks
from bot.slack.failures import handle_error, user_and_channel
from bot.slack.messenger import POST_WATCH, Messenger, ReplyTo, SlackFailure
from commands.errors import CommandError
from commands.intents import (
    ChangeCommand,
    Command,
    HelpCommand,
    ListCommand,
    RawCommand,
    ReservedCommand,
    ShowCommand,
)
from commands.natural import rephrase
from commands.parse import parse

log = logging.getLogger("flagops.inbox")

Handler = Callable[[dict[str, Any]], Awaitable[None]]
"""What works one row: the payload as Slack sent it."""
Ack = Callable[..., Awaitable[Any]]

BACKGROUND_TASK_PREFIX = "flagops-background:"
"""Names of the loops that run for as long as the process does (idle checks leave them out)."""
ROW_TASK_PREFIX = "flagops-inbox-row:"
AFTER_ACK_TASK = "flagops-after-ack"
NOTIFY_CHANNEL = "flagops_inbox"
MAX_ATTEMPTS = 5  # takes of one row (each after its worker died) before it is given up
KEEP_DONE = timedelta(days=1)  # done rows (their delivery keys) are kept this long, then purged
PURGE_EVERY = 600.0  # seconds between purges of old done rows
INLINE_WAIT = 10.0  # seconds a listener waits for an earlier row of its card before leaving its row
# After the last delivery of a burst, how long (seconds) the web process keeps working fewer rows
# at once (FLAGOPS_INBOX_BURST_CONCURRENCY) before going back to FLAGOPS_INBOX_CONCURRENCY.
BURST_QUIET = 0.05
# Deliveries arriving without a quiet for longer than this (seconds) are load, not a burst: the
# rows are worked at full pace again, so that no card waits for good behind a steady stream.
BURST_LONGEST = 5.0
ACCEPT_TIMEOUT = 1.5  # seconds the INSERT may take before the ack (Slack waits 3 s in all)
LISTEN_BACKOFF_MIN, LISTEN_BACKOFF_MAX = 0.5, 30.0  # seconds before listening again after a loss
FINISH_TRIES = (0.2, 0.5, 1.0)  # pauses between tries to mark a row done
RERUN_SAFE = frozenset({"change_click", "history_click", "history_menu", "undo_click"})
"""Handlers that may run again from the start when taken over: they read and post (a card, an
answer), or their one write is guarded by the change's own compare-and-set (Apply, Cancel...)."""
COMMAND_TEXT = {"command": "text", "guess": "value"}
"""Handlers that run a command's text (where it is in the payload): safe to run again when the
command only reads and proposes (:func:`reruns_safely`)."""
READ_VERBS = frozenset({"eval", "history", "reminders", "subscriptions", "undo"})
"""Reserved verbs that only read and answer (``undo`` proposes a card)."""
_SLACK_TOKEN_FIELDS = ("token",)  # the legacy verification token Slack sends: never stored


class LeaseLost(Exception):
    """The row being worked was taken over by another worker (this one was too slow to renew its
    lease): the work stops before it posts anything."""


class _RowWatch:
    """Records a row's posting (``POST_WATCH``) while the row is being worked."""

    def __init__(self, inbox: Inbox, row: InboxRow) -> None:
        self.inbox = inbox
        self.row = row
        self.active = True
        self.marked = False
        self.recorded = False
        self.wrote = False
        """Whether a write was sent to LaunchDarkly (``WRITE_WATCH``): its outcome is then always
        reported, even when the row's lease was lost meanwhile."""

    def note_write(self) -> None:
        self.wrote = True

    async def before_post(self, channel: str) -> None:
        if not self.active or self.marked:
            return
        if not await self.inbox.store.mark_posting(self.row.id, self.inbox.owner, self.row.attempts):
            if not self.wrote:
                raise LeaseLost(f"inbox row {self.row.id} was taken over")
            # What LaunchDarkly did is told, lease or not: the take that has the row now does not
            # send it again (the change's compare-and-set, or the row is not run again).
            log.warning("inbox row %s was taken over after a write; its outcome is posted still", self.row.id)
        self.marked = True

    async def after_post(self, channel: str, ts: str) -> None:
        if not self.active or self.recorded:
            return
        self.recorded = True
        try:
            await self.inbox.store.record_post(self.row.id, channel, ts)
        except Exception as error:  # noqa: BLE001 - the post happened: its bookkeeping never undoes it
            log.warning(
                "inbox row %s posted but its ts was not recorded (%s)", self.row.id, type(error).__name__
            )
        self.inbox.wake()


def delivery_key(handler: str, body: dict[str, Any]) -> str:
    """What identifies one Slack delivery, however often it is sent: its ``trigger_id`` (commands,
    clicks, submissions), else the action's ``action_ts``, else the event's ``event_id``; a payload
    with none of them by its whole content. Hashed: at most 60 characters whatever Slack sent."""
    kind = str(body.get("type") or ("command" if "command" in body else "event"))
    identity: Any = body.get("trigger_id") or body.get("event_id")
    if not identity:
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        user, _channel = user_and_channel(body)
        identity = (
            [user, action.get("action_id"), action.get("action_ts")] if action.get("action_ts") else None
        )
    if not identity:
        identity = body
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:40]
    return f"{handler[:12]}:{kind[:6]}:{digest}"


def clicked_card(body: dict[str, Any]) -> str | None:
    """The card a click was on (``<channel>:<message ts>``), or None (a Home tab or modal click)."""
    container = body.get("container")
    if not isinstance(container, dict) or container.get("type") != "message":
        return None
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if isinstance(channel, str) and isinstance(ts, str) and channel and ts:
        return card_key(channel, ts)
    return None


def stored_body(body: dict[str, Any]) -> dict[str, Any]:
    """The payload as it is written: without Slack's legacy verification ``token``."""
    return {k: v for k, v in body.items() if k not in _SLACK_TOKEN_FIELDS}


class Inbox:
    """Accepted deliveries, written before the ack and worked from the database."""

    def __init__(self, *, settings: Settings, store: InboxStore, messenger: Messenger) -> None:
        self.settings = settings
        self.store = store
        self.messenger = messenger
        self.handlers: dict[str, Handler] = {}
        """Each handler name → what works its rows (filled as the features register)."""
        self.owner = uuid.uuid4().hex[:16]
        """This process, as the holder of the leases on the rows it works."""
        self.lease = timedelta(seconds=settings.flagops_inbox_lease)
        self.works_inline = settings.flagops_inbox == "web"
        self._running: set[asyncio.Task[Any]] = set()
        self._after_acks: set[asyncio.Task[Any]] = set()
        """What listeners do after their ack, each in a task of its own (:meth:`after_ack`)."""
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._listen_retry = LISTEN_BACKOFF_MIN  # seconds of polling after a failed LISTEN
        self._held: dict[int, int] = {}
        """Rows being worked in this process: id → take number (only their leases are renewed)."""
        self._arriving = 0
        """Deliveries between their listener's start and their ack, in this process."""
        self._last_arrival = self._before_last = -BURST_QUIET
        """When the last delivery arrived, and the one before it (see ``_in_burst``)."""
        self._arrivals = 0
        """Deliveries that arrived in this process (each one's number tells it from the others)."""
        self._burst_since = 0.0
        """When the deliveries arriving now started arriving (see ``_work_limit``)."""
        self._quiet_wake: asyncio.TimerHandle | None = None
        self._left = 0
        """Rows the listeners left to the loop that it has not taken yet (see ``settling``)."""

    # --- the listener's side ------------------------------------------------------------------

    def handle(self, name: str, handler: Handler) -> None:
        """Work the rows written under ``name`` with ``handler``."""
        self.handlers[name] = handler

    def handler(self, name: str) -> Callable[[Handler], Handler]:
        """As :meth:`handle`, as a decorator."""

        def register(handler: Handler) -> Handler:
            self.handle(name, handler)
            return handler

        return register

    async def accept(self, name: str, body: dict[str, Any], ack: Ack, *, card: str | None = None) -> None:
        """Write the delivery (one INSERT), ack it, then (``FLAGOPS_INBOX=web``) work it here.

        Args:
            name: the handler (:meth:`handle`) that works it.
            body: the payload as Bolt parsed it.
            ack: Bolt's ``ack``; called once the row is written (a database that cannot take the
                row fails the request instead: Slack shows the person it failed).
            card: the card a click was on (default: read from the payload's container).

        A delivery already written (Slack's retry, a replay) is acked and nothing more.
        """
        loop = asyncio.get_running_loop()
        if not self._in_burst(loop):
            self._burst_since = loop.time()
        self._arriving += 1
        self._arrivals += 1
        mine = self._arrivals
        self._before_last, self._last_arrival = self._last_arrival, loop.time()
        try:
            row_id = await self._write(name, body, ack, card)
        finally:
            self._arriving -= 1
            self._after_arrival(loop)
        if row_id is None:
            return
        if self.works_inline and len(self._running) < self._work_limit(loop, besides=mine):
            # Worked here, in a task of its own: the listener returns now and Bolt answers Slack.
            task = self._in_task(body, lambda: self._work_own(row_id), f"{ROW_TASK_PREFIX}{row_id}")
            self._running.add(task)  # the slot is taken now, before any await
            task.add_done_callback(self._own_row_done)
        else:
            # Workers elsewhere, or this process already works as many rows as it may now: the
            # loop takes the row when a slot frees (a burst is not worked all at once on one loop).
            if self.works_inline:
                self._left += 1
            self.wake()

    def _own_row_done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        self.wake()  # a slot is free: rows left to the loop meanwhile need not wait for its poll

    def after_ack(self, body: dict[str, Any], work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work``, what a listener does after its ack without a row (a modal opened with the
        ``trigger_id``, an account verb, a pasted token refused, a Home tab), in a task of its own.

        Bolt answers Slack's request when the listener returns (``process_before_response=True``,
        ``bot.slack.app``): a listener acks, hands what follows here, and returns. An error is told
        as Bolt's error handler tells one (:func:`bot.slack.failures.handle_error`); the task is
        waited for at stop, as the rows being worked are."""
        self._in_task(body, work, AFTER_ACK_TASK)

    def _in_task(
        self, body: dict[str, Any], work: Callable[[], Awaitable[None]], name: str
    ) -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await work()
            except Exception as error:  # noqa: BLE001 - told to the person (a bug logged), as Bolt's are
                await handle_error(error, body, self.messenger)

        task = asyncio.create_task(run(), name=name)
        self._after_acks.add(task)
        task.add_done_callback(self._after_acks.discard)
        return task

    @property
    def settling(self) -> bool:
        """Whether rows this process's listeners left to its loop may still be waiting for it:
        True until the loop has taken as many, or found nothing left to take (tests wait for it,
        as they wait for tasks: a row left to the loop is work not yet started)."""
        return self._left > 0

    def _work_limit(self, loop: asyncio.AbstractEventLoop, *, besides: int | None = None) -> int:
        """How many rows this process may work at once now: ``FLAGOPS_INBOX_CONCURRENCY``, but
        while deliveries are arriving (one is between its start and its ack, or one arrived less
        than ``BURST_QUIET`` ago) at most ``FLAGOPS_INBOX_BURST_CONCURRENCY`` (0 by default: none):
        the front door first. The acks and the work share one event loop; under a burst, every
        row worked is CPU taken from the acks (Slack gives up on an ack after 3 s, on a card
        never), and the rows wait, written, for the burst to pass.

        ``besides``: the delivery asking (its number), which does not count as arriving itself: a
        command alone is worked at once, whatever the limit."""
        limit = self.settings.flagops_inbox_concurrency
        if self._in_burst(loop, besides=besides) and loop.time() - self._burst_since < BURST_LONGEST:
            return min(limit, self.settings.flagops_inbox_burst_concurrency)
        # Quiet, or deliveries have kept coming for BURST_LONGEST: that is load, not a burst, and
        # the rows are worked at full pace (the acks share the loop; no row waits for good).
        return limit

    def _in_burst(self, loop: asyncio.AbstractEventLoop, *, besides: int | None = None) -> bool:
        """Whether deliveries are arriving: one is between its start and its ack, or one came less
        than ``BURST_QUIET`` ago; other than delivery number ``besides``, when given (the last to
        arrive, or one that came before it: then the last did come after it)."""
        last = self._before_last if besides == self._arrivals else self._last_arrival
        return self._arriving > 0 or loop.time() - last < BURST_QUIET

    def _after_arrival(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once no delivery is arriving, wake the loop when the quiet has lasted ``BURST_QUIET``
        (the rows left to it during the burst are taken at full concurrency then)."""
        if self._arriving or not self.works_inline:
            return
        if self._quiet_wake is not None:
            self._quiet_wake.cancel()
        self._quiet_wake = loop.call_later(BURST_QUIET, self.wake)

    async def _write(self, name: str, body: dict[str, Any], ack: Ack, card: str | None) -> int | None:
        """Write the delivery and ack it; the row's id, or None when there is nothing to work
        (not written: the person was told; or Slack's retry of a row already written)."""
        _user, channel = user_and_channel(body)
        container = body.get("container")
        if channel is None and isinstance(container, dict) and isinstance(container.get("channel_id"), str):
            channel = container["channel_id"]
        given_up = committing = False

        def keep() -> bool:
            nonlocal committing
            committing = not given_up
            return committing

        with urgent_writes():  # the task copies the context: its INSERT goes before queued writes
            adding = asyncio.create_task(
                self.store.add(
                    name,
                    delivery_key(name, body),
                    stored_body(body),
                    channel_id=channel[:64] if channel else None,
                    card_key=card if card is not None else clicked_card(body),
                    keep=keep,
                )
            )
        adding.add_done_callback(_quiet)
        try:
            # Bounded: past it the person is told, within Slack's 3 s, that it was not taken (and
            # to send it again); the INSERT, when it gets through after all, is rolled back before
            # its commit, so that the one they send again is the only one. (It is not cancelled: a
            # cancelled INSERT could leave its connection holding SQLite's lock.)
            done, _pending = await asyncio.wait({adding}, timeout=ACCEPT_TIMEOUT)
            if not done and not committing:
                given_up = True
                raise TimeoutError
            row_id = await adding  # written, or committing this very moment
        except (SQLAlchemyError, OSError, TimeoutError, NotKept) as error:
            # The error's type only: its text would hold the payload (a response_url, what was typed).
            log.error("a %s delivery could not be written to the inbox (%s)", name, type(error).__name__)
            if "command" in body:
                await ack(text=_NOT_TAKEN.format(what=_what(body)))
            else:
                await ack()
                self.after_ack(body, lambda: self._tell(body, _NOT_TAKEN.format(what=_what(body))))
            return None
        await ack()
        if row_id is None:
            log.info("a %s delivery Slack sent again was acked only (it is one row)", name)
        return row_id

    async def _work_own(self, row_id: int) -> None:
        """Take the listener's own row and work it now; when an earlier row of its card is not
        done yet, wait for it (up to ``INLINE_WAIT``, then the loop takes the row when it may)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INLINE_WAIT
        delay = 0.01
        while True:
            try:
                row = await self.store.claim(self.owner, self.lease, row_id=row_id)
                current = None if row is not None else await self.store.get(row_id)
            except (SQLAlchemyError, OSError) as error:
                # The row is written: the loop (this process's, or a worker's) takes it later.
                log.warning("inbox row %s could not be taken now (%s)", row_id, type(error).__name__)
                return
            if row is not None:
                await self._work(row)
                return
            if current is None or current.state != "pending" or loop.time() > deadline or self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    # --- the worker's side --------------------------------------------------------------------

    def wake(self) -> None:
        """Have the loop look at the inbox now."""
        self._wake.set()

    def start(self) -> None:
        """Start the loop that takes rows (in a task of its own, until :meth:`stop`)."""
        if self._loop is None:
            self._stopping = False
            self._loop = asyncio.create_task(self.run(), name=f"{BACKGROUND_TASK_PREFIX}inbox")

    async def stop(
        self, grace: float | None = None, *, drain: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Stop taking rows and let the rows being worked finish (at most ``grace`` seconds,
        ``FLAGOPS_SHUTDOWN_GRACE``), then ``drain`` (the change service's own wait for its clicks);
        their leases are renewed all that time. Only then does the loop stop: a row still running
        after that keeps its lease until it expires, and another worker takes it over."""
        self._stopping = True
        try:
            await self._take_left()
            current = asyncio.current_task()
            work = [t for t in self._running | self._after_acks if t is not current and not t.done()]
            if work:
                grace = self.settings.flagops_shutdown_grace if grace is None else grace
                log.info("waiting up to %.0f s for %d delivery(ies) being worked", grace, len(work))
                _done, pending = await asyncio.wait(work, timeout=grace)
                if pending:
                    log.warning(
                        "%d inbox row(s) still running at stop; their leases will expire", len(pending)
                    )
            if drain is not None:
                await drain()
        finally:
            if self._loop is not None:
                self._loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._loop
                self._loop = None

    async def _take_left(self) -> None:
        """At stop: take the rows this process's listeners left to its loop (a burst just before
        the stop, its quiet not come yet), so that they are worked within the grace like those
        already running, not left for another process or the next start."""
        try:
            while self._left > 0 and len(self._running) < self.settings.flagops_inbox_concurrency:
                row = await self.store.claim(self.owner, self.lease, handlers=self.handlers.keys())
                if row is None:
                    break
                self._left -= 1
                self._spawn(row)
        except (SQLAlchemyError, OSError) as error:
            log.warning("the inbox could not be read at stop (%s)", type(error).__name__)
        self._left = 0  # the rest (none, or a card's later rows) are the next start's

    async def run(self) -> None:
        """Take and work rows until cancelled: woken by a row written or done in this process, by
        Postgres' ``NOTIFY`` (``FLAGOPS_INBOX=workers``), else every ``FLAGOPS_INBOX_POLL`` seconds.
        Leases held are renewed every third of ``FLAGOPS_INBOX_LEASE``; old done rows are purged.
        An unexpected error is logged and the loop starts again, as it does when its ``LISTEN``
        connection is lost (it listens again; while ``LISTEN`` keeps failing it polls, and tries
        again after waits doubling up to ``LISTEN_BACKOFF_MAX``): it never stops for good."""
        while True:
            try:
                await self._run()
            except Exception:  # the loop outlives any one failure
                log.exception("the inbox loop failed; starting it again")
                await asyncio.sleep(self.settings.flagops_inbox_poll)
                continue
            # It returned: its LISTEN connection was lost (or LISTEN failed and it is time to try
            # again). A short pause, then listen again; leases are renewed meanwhile by the next run.
            await asyncio.sleep(LISTEN_BACKOFF_MIN)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        poll = self.settings.flagops_inbox_poll
        renew_every = self.lease.total_seconds() / 3
        next_renew = loop.time()  # at once: the loop may have started again after a pause
        next_purge = loop.time()
        async with self._listening() as (listening, lost):
            if listening:
                poll = max(poll, 5.0)  # NOTIFY wakes it; the poll is only a safety net
            while True:
                self._wake.clear()
                if lost is not None and lost.is_set():
                    log.warning("the inbox's LISTEN connection was lost; listening again")
                    return
                try:
                    # Renew first: a loop that woke late must not take its own rows as abandoned.
                    if loop.time() >= next_renew:
                        next_renew = loop.time() + renew_every
                        await self.store.renew(self.owner, self.lease, dict(self._held))
                    while not self._stopping and len(self._running) < self._work_limit(loop):
                        row = await self.store.claim(self.owner, self.lease, handlers=self.handlers.keys())
                        if row is None:
                            self._left = 0  # nothing left that may be taken now
                            break
                        self._left = max(0, self._left - 1)
                        self._spawn(row)
                    if loop.time() >= next_purge:
                        next_purge = loop.time() + PURGE_EVERY
                        await self.store.purge(KEEP_DONE)
                except (SQLAlchemyError, OSError) as error:
                    log.warning("the inbox could not be read (%s); trying again", type(error).__name__)
                wait = max(0.0, min(poll, next_renew - loop.time()))
                # asyncio.timeout, not wait_for: no task of its own (idle checks see only the loop's).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    def _spawn(self, row: InboxRow) -> None:
        task = asyncio.create_task(self._work(row), name=f"{ROW_TASK_PREFIX}{row.id}")
        self._running.add(task)  # counted at once: the loop may take another row before it starts
        task.add_done_callback(self._running.discard)
        task.add_done_callback(lambda _t: self.wake())

    @contextlib.asynccontextmanager
    async def _listening(self) -> Any:
        """``LISTEN flagops_inbox`` on a connection of its own (Postgres, ``FLAGOPS_INBOX=workers``);
        yields whether it listens, and an event set when that connection is lost (or, when LISTEN
        failed, once it is time to try again; None: polling only, SQLite or the web process)."""
        engine = self.store.engine
        if engine.dialect.name != "postgresql" or self.works_inline:
            yield False, None
            return
        connection = None
        lost = asyncio.Event()
        retry: asyncio.TimerHandle | None = None

        def on_lost(*_args: Any) -> None:
            lost.set()
            self.wake()

        try:
            connection = await engine.connect()
            # Through SQLAlchemy first: a connection a restart killed is found dead here and the
            # pool renewed (asyncpg's LISTEN below would fail unseen by the pool, again and again).
            await connection.execute(text("SELECT 1"))
            await connection.commit()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(NOTIFY_CHANNEL, lambda *_args: self.wake())
            driver.add_termination_listener(on_lost)
            log.info("inbox worker %s listening for new rows", self.owner)
            listening = True
            self._listen_retry = LISTEN_BACKOFF_MIN
        except Exception as error:  # noqa: BLE001 - asyncpg's own errors too: polling still works
            if connection is not None:  # not back into the pool: it may be the dead one
                with contextlib.suppress(Exception):
                    await connection.invalidate()
            log.warning(
                "LISTEN unavailable (%s): polling the inbox, trying again in %.1f s",
                type(error).__name__,
                self._listen_retry,
            )
            listening = False
            # Polling meanwhile (leases renewed, rows taken); the wait doubles while it keeps failing.
            retry = asyncio.get_running_loop().call_later(self._listen_retry, on_lost)
            self._listen_retry = min(self._listen_retry * 2, LISTEN_BACKOFF_MAX)
        try:
            yield listening, lost
        finally:
            if retry is not None:
                retry.cancel()
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _work(self, row: InboxRow) -> None:
        """Work one row this worker holds, then mark it done. Nothing that fails in between leaves
        the row held for good: the outcome of an error is "error", and a row that cannot be marked
        done after a few tries is let go (its lease is no longer renewed; a later take decides)."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        self._held[row.id] = row.attempts
        try:
            watch = _RowWatch(self, row)
            post_token = POST_WATCH.set(watch)
            write_token = WRITE_WATCH.set(watch.note_write)
            try:
                outcome = await self._outcome(row)
            except LeaseLost:
                log.warning("inbox row %s was taken over by another worker; this one stopped", row.id)
                return
            except Exception as error:  # noqa: BLE001 - logged by type; the row is still marked done
                log.error("inbox row %s failed (%s)", row.id, type(error).__name__)
                outcome = "error"
            finally:
                watch.active = False
                WRITE_WATCH.reset(write_token)
                POST_WATCH.reset(post_token)
            await self._finish(row, outcome)
        finally:
            if self._held.get(row.id) == row.attempts:
                del self._held[row.id]
            if task is not None:
                self._running.discard(task)
            self.wake()

    async def _finish(self, row: InboxRow, outcome: str) -> None:
        """Mark the row done, trying again a few times when the database fails."""
        for pause in (*FINISH_TRIES, None):
            try:
                if not await self.store.finish(row.id, self.owner, row.attempts, outcome):
                    log.warning("inbox row %s was taken over before it was marked done", row.id)
                return
            except (SQLAlchemyError, OSError) as error:
                log.warning("inbox row %s could not be marked done (%s)", row.id, type(error).__name__)
            if pause is None:
                log.error("inbox row %s left to its lease: it could not be marked done", row.id)
                return
            await asyncio.sleep(pause)

    async def _outcome(self, row: InboxRow) -> str:
        """Run a row (or decide, for one taken over, that it must not run again): its outcome."""
        body = row.body
        if row.attempts > 1:
            log.info("inbox row %s (%s) taken over, attempt %s", row.id, row.handler, row.attempts)
            if row.card_ts is not None:
                return "posted"  # its card (or answer) is up: the rest is the card's own lifecycle
            if row.posting_at is not None:
                await self._tell(body, _UNCERTAIN.format(what=_what(body)))
                return "uncertain"
            if row.attempts > MAX_ATTEMPTS:
                await self._tell(body, _GAVE_UP.format(what=_what(body)))
                return "abandoned"
            if not reruns_safely(row.handler, body):
                # It may have written (LaunchDarkly, a reminder...) before it stopped: never twice.
                await self._tell(
                    body, _NOT_RERUN.format(what=_what(body), command=self.settings.flagops_command)
                )
                return "not run again"
        handler = self.handlers.get(row.handler)
        if handler is None:  # only the listener's own row can get here: its handler is registered
            log.error("inbox row %s names no handler (%s): not run", row.id, row.handler)
            await self._tell(body, _GAVE_UP.format(what=_what(body)))
            return "unknown"
        try:
            await handler(body)
        except (LeaseLost, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001 - every error is told (and a bug logged), as Bolt's are
            await handle_error(error, body, self.messenger)
            return "error"
        return "ok"

    async def _tell(self, body: dict[str, Any], text: str) -> None:
        user, channel = user_and_channel(body)
        if not user:
            return
        url = body.get("response_url")
        reply = ReplyTo(channel or "", user, url if isinstance(url, str) else None)
        try:
            await self.messenger.ephemeral(reply, text)
        except SlackFailure as error:
            log.warning("could not tell %s about an inbox row taken over: %s", user, error.reason)


_UNCERTAIN = (
    ":warning: flagops restarted while it was posting its answer to {what}. It was not run a second "
    "time, so that nothing is posted twice: if you see no card or answer for it, run it again."
)
_NOT_RERUN = (
    ":warning: flagops restarted while it was handling {what}. It may or may not have been done, "
    "and it was not run a second time, so that nothing is done twice. Check before trying again: "
    "the flag in LaunchDarkly (or `{command} show <flag>`), the card's thread, or `{command} reminders`."
)
_NOT_TAKEN = (
    ":warning: flagops could not take in {what} just now (its database did not answer). "
    "Nothing was done: try again in a moment."
)
_GAVE_UP = (
    ":warning: flagops stopped several times while handling {what} and gave up on it. "
    "Run it again; if it keeps failing, ask an admin to look at flagops' logs."
)


def _what(body: dict[str, Any]) -> str:
    """The delivery in words for the person: the command as typed, or "your click"."""
    command, text = body.get("command"), body.get("text")
    if isinstance(command, str) and isinstance(text, str):
        return f"`{blocks.escape(blocks.clip(f'{command} {text}'.strip(), 200))}`"
    if body.get("type") == "view_submission":
        return "your form"
    return "your click"


def reruns_safely(handler: str, body: dict[str, Any]) -> bool:
    """Whether a row taken over (its worker stopped while running it) may run again from the start:
    its handler only reads and posts, or its write is guarded by the change's compare-and-set; a
    command, when it proposes a card or only reads (a write like ``link`` or ``remind`` is not run
    twice: the person is told instead)."""
    if handler in RERUN_SAFE:
        return True
    field = COMMAND_TEXT.get(handler)
    if field is None:
        return False
    if handler == "guess":
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        text = action.get(field)
    else:
        text = body.get(field)
    return isinstance(text, str) and _command_reads(text)


def _command_reads(text: str) -> bool:
    """Whether command text only reads and answers, or proposes a card (the router's reading)."""
    command: Command | None
    try:
        command = parse(text)
    except CommandError:
        phrased = rephrase(text)
        try:
            command = parse(phrased) if phrased is not None else None
        except CommandError:
            command = None
    if command is None:
        # Not a command: a ramp or a one-line rollout proposes a card; anything else is answered.
        return True
    if isinstance(command, ChangeCommand | RawCommand | ShowCommand | ListCommand | HelpCommand):
        return True
    return isinstance(command, ReservedCommand) and command.verb in READ_VERBS


def _quiet(task: asyncio.Task[Any]) -> None:
    """Retrieve the outcome of an INSERT given up on (its error, if any, was logged by type)."""
    if not task.cancelled():
        task.exception()
