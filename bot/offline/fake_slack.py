"""A fake Slack Web API (starlette, ASGI) that records every call and behaves like Slack where
flagops depends on it.

Point ``AsyncWebClient(base_url=<served url> + "/api/")`` at it. It is used by the tests and by the
offline console (``python -m bot console``), so it lives in the package.

Behaviours kept from Slack:

- every call is recorded (:attr:`FakeSlack.calls`): method, merged params (query, form and JSON
  body; JSON-encoded form fields such as ``blocks`` decoded), the bearer token, the content type;
- ``chat.postMessage`` returns a fresh ``ts``; a ``thread_ts`` that is not a message of the
  channel is refused (``invalid_thread_ts``); a channel made private with :meth:`make_private`
  is refused (``not_in_channel``; real Slack may answer ``channel_not_found`` for a private
  channel the bot cannot see: the error is configurable); ``blocks`` are checked with slack_sdk's
  Block Kit models (``Block.parse`` then ``to_dict()``, which validates recursively) and unknown
  fields are refused, answering ``invalid_blocks``; more than 50 blocks is ``invalid_blocks``;
  neither text nor blocks is ``no_text``;
- ``chat.update``, ``chat.postEphemeral`` (only shown in a thread that exists), ``chat.getPermalink``,
  ``views.open`` / ``views.update`` / ``views.publish`` (views checked with slack_sdk's ``View``),
  ``users.info`` (configurable users with email and time zone), ``auth.test``, ``conversations.info``;
- 429 with ``Retry-After`` on demand (:meth:`rate_limit`);
- ``response_url``: ``POST /response/<id>`` records ``respond()`` payloads (at most 5 uses, as in
  Slack), shows ephemeral ones to their user and applies ``replace_original`` /
  ``delete_original`` / ``in_channel``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.offline.fake_socket_mode import FakeSocketMode, SocketRefused

MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_VIEW = 100
MAX_TEXT = 40_000
RESPONSE_URL_USES = 5


@dataclass
class Call:
    """One Web API call as received."""

    method: str
    params: dict[str, Any]
    token: str | None
    content_type: str
    ok: bool | None = None
    error: str | None = None


@dataclass
class Message:
    """A message in a channel (``thread_ts`` set for a thread reply)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    thread_ts: str | None = None
    edits: int = 0
    metadata: dict[str, Any] | None = None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The message's buttons, in order (from actions blocks and section accessories)."""
        return message_buttons(self.blocks)


@dataclass
class Ephemeral:
    """A message only one user sees (``chat.postEphemeral`` or an ephemeral ``respond()``)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    via: str = "chat.postEphemeral"


@dataclass
class ResponseUrl:
    """A ``response_url`` handed out with a slash command or an interaction."""

    id: str
    channel: str
    user: str
    message_ts: str | None = None
    uses: int = 0


@dataclass
class ResponsePost:
    """One payload posted to a ``response_url``."""

    url_id: str
    payload: dict[str, Any]
    accepted: bool = True


@dataclass
class User:
    """A workspace member as ``users.info`` describes them."""

    id: str
    name: str
    email: str | None = None
    real_name: str = ""
    tz: str = "Europe/London"
    tz_offset: int = 0
    is_bot: bool = False

    def as_slack(self, team_id: str) -> dict[str, Any]:
        """The ``user`` object of ``users.info``."""
        profile: dict[str, Any] = {
            "real_name": self.real_name or self.name,
            "display_name": self.name,
        }
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name or self.name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": self.tz_offset,
            "is_bot": self.is_bot,
            "deleted": False,
            "profile": profile,
        }


@dataclass
class Channel:
    """A conversation: public ones are writable with ``chat:write.public``."""

    id: str
    name: str
    is_private: bool = False
    bot_is_member: bool = True
    refusal: str = "not_in_channel"


@dataclass
class _RateLimit:
    method: str | None
    every: int | None
    remaining: int | None
    retry_after: int
    seen: int = 0


class SlackError(Exception):
    """A Web API error answer (``{"ok": false, "error": ...}``)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _State:
    messages: dict[str, list[Message]] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    home: dict[str, dict[str, Any]] = field(default_factory=dict)


def message_buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every button of a message, in reading order, each with the ``block_id`` it lives in.

    Args:
        blocks: the message's Block Kit blocks.

    Returns:
        Button elements (copies) with ``block_id`` added.
    """
    found: list[dict[str, Any]] = []
    for block in blocks:
        elements = block.get("elements", []) if block.get("type") == "actions" else []
        accessory = block.get("accessory")
        if block.get("type") == "section" and isinstance(accessory, dict):
            elements = [accessory]
        for element in elements:
            if element.get("type") == "button":
                found.append({**element, "block_id": block.get("block_id")})
    return found


def check_blocks(blocks: object, limit: int = MAX_BLOCKS_MESSAGE) -> list[dict[str, Any]]:
    """Validate Block Kit blocks as Slack would, with slack_sdk's models.

    Args:
        blocks: the ``blocks`` argument (already JSON-decoded).
        limit: the most blocks allowed (50 in a message, 100 in a view).

    Returns:
        The blocks.

    Raises:
        SlackError: ``invalid_blocks`` with the reasons in ``errors``.
    """
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    for index, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            errors.append(f"expected an object [json-pointer:/blocks/{index}]")
            continue
        try:
            parsed = Block.parse(dict(raw))
            if parsed is None:
                errors.append(f"unknown block type {raw.get('type')!r} [json-pointer:/blocks/{index}]")
                continue
            rendered = parsed.to_dict()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
            errors.append(f"{exc} [json-pointer:/blocks/{index}]")
            continue
        errors.extend(
            f"{problem} [json-pointer:/blocks/{index}{path}]" for path, problem in _extra(raw, rendered)
        )
    if errors:
        raise SlackError("invalid_blocks", errors=errors)
    return [dict(block) for block in blocks]


def check_view(view: object) -> dict[str, Any]:
    """Validate a modal or Home tab view with slack_sdk's ``View`` (and its blocks).

    Raises:
        SlackError: ``invalid_arguments`` with the reasons.
    """
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except json.JSONDecodeError:
            raise SlackError("invalid_arguments", errors=["view is not JSON"]) from None
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", errors=["view must be an object"])
    limit = MAX_BLOCKS_VIEW
    check_blocks(view.get("blocks", []), limit)
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SlackError("invalid_arguments", errors=[str(exc)]) from None
    return dict(view)


def _extra(given: object, rendered: object, path: str = "") -> list[tuple[str, str]]:
    """Parts of ``given`` the model did not keep: fields Slack does not know (it refuses them)."""
    if isinstance(given, dict):
        if not isinstance(rendered, dict):
            return [(path, "must be a string" if isinstance(rendered, str) else "unexpected object")]
        problems: list[tuple[str, str]] = []
        for key, value in given.items():
            if key not in rendered:
                problems.append((f"{path}/{key}", "unknown field"))
            else:
                problems.extend(_extra(value, rendered[key], f"{path}/{key}"))
        return problems
    if isinstance(given, list):
        if not isinstance(rendered, list) or len(rendered) != len(given):
            return [(path, "unexpected list")]
        return [
            p
            for i, (g, r) in enumerate(zip(given, rendered, strict=True))
            for p in _extra(g, r, f"{path}/{i}")
        ]
    if isinstance(rendered, dict) and isinstance(given, str):
        return [(path, "must be an object, not a string")]
    return []


DEMO_USERS = (
    User("U_ALICE", "alice", "alice@example.com", "Alice Archer", "Europe/Berlin", 3600),
    User("U_BOB", "bob", "bob@example.com", "Bob Baker", "America/New_York", -18000),
    User("U_CAROL", "carol", "carol@example.com", "Carol Cole", "Asia/Tokyo", 32400),
    User("U_TARA", "tara", "tara@example.com", "Tara Mensah", "Europe/London", 0),
    User("U_PAT", "pat", "pat@example.com", "Pat Kowalski", "Europe/Warsaw", 3600),
)


class FakeSlack:
    """The fake Slack Web API. Serve :attr:`app`; read what the bot did through the accessors.

    Args:
        team_id: the workspace id.
        bot_user_id: the bot's user id (``auth.test``; author of its messages).
        bot_id: the bot's bot id.
        tokens: the accepted bot tokens; None accepts any non-empty token.
        users: the members (default: alice, bob, carol of the demo project).
        start_ts: the seconds part of the first ``ts`` handed out.
    """

    def __init__(
        self,
        *,
        team_id: str = "T_DEMO",
        bot_user_id: str = "U_FLAGOPS",
        bot_id: str = "B_FLAGOPS",
        tokens: set[str] | None = None,
        users: tuple[User, ...] | list[User] = DEMO_USERS,
        start_ts: int = 1_700_000_000,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.tokens = tokens
        self.base_url: str | None = None
        """Where this fake is served (no trailing slash); set by whoever serves it."""
        self.calls: list[Call] = []
        self.responses: list[ResponsePost] = []
        self.in_flight = 0
        """Requests being handled right now (for quiescence checks)."""
        self._users: dict[str, User] = {u.id: u for u in users}
        self._users.setdefault(bot_user_id, User(bot_user_id, "flagops", is_bot=True))
        self._channels: dict[str, Channel] = {}
        self.usergroups: dict[str, list[str]] = {}
        """User group id → member ids (``usergroups.users.list``)."""
        self._state = _State()
        self._response_urls: dict[str, ResponseUrl] = {}
        self._limits: list[_RateLimit] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._start_ts = start_ts
        self._views = itertools.count(1)
        self.socket_mode: FakeSocketMode | None = None
        """Answers ``apps.connections.open`` when set (see ``bot.offline.fake_socket_mode``)."""
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._handle, methods=["GET", "POST"]),
                Route("/response/{url_id}", self._respond, methods=["POST"]),
            ]
        )

    # --- configuration ------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        email: str | None = None,
        real_name: str = "",
        tz: str = "Europe/London",
        tz_offset: int = 0,
        is_bot: bool = False,
    ) -> User:
        """Add (or replace) a workspace member ``users.info`` will describe."""
        user = User(user_id, name, email, real_name, tz, tz_offset, is_bot)
        with self._lock:
            self._users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str | None = None, *, private: bool = False) -> Channel:
        """Declare a channel (undeclared ids are public channels the bot can post in)."""
        channel = Channel(channel_id, name or channel_id.lower(), is_private=private, bot_is_member=True)
        with self._lock:
            self._channels[channel_id] = channel
        return channel

    def set_usergroup(self, group_id: str, members: list[str]) -> None:
        """Declare (or change) a user group and its members, for ``usergroups.users.list``."""
        with self._lock:
            self.usergroups[group_id] = list(members)

    def make_private(self, channel_id: str, *, error: str = "not_in_channel") -> None:
        """Make ``channel_id`` a private channel the bot is not in: posting there fails with ``error``."""
        with self._lock:
            channel = self._channels.get(channel_id) or Channel(channel_id, channel_id.lower())
            channel.is_private, channel.bot_is_member, channel.refusal = True, False, error
            self._channels[channel_id] = channel

    def rate_limit(
        self,
        method: str | None = None,
        *,
        every: int | None = None,
        next: int | None = None,
        retry_after: int = 1,
    ) -> None:
        """Answer 429 with ``Retry-After`` for every ``every``-th call, or for the ``next`` N calls.

        Args:
            method: only this Web API method (all methods when None).
            every: limit every N-th matching call.
            next: limit the next N matching calls.
            retry_after: the ``Retry-After`` header, in seconds.
        """
        if (every is None) == (next is None):
            raise ValueError("give exactly one of every= or next=")
        with self._lock:
            self._limits.append(_RateLimit(method, every, next, retry_after))

    def clear_rate_limits(self) -> None:
        """Stop answering 429."""
        with self._lock:
            self._limits.clear()

    def new_response_url(self, channel: str, user: str, *, message_ts: str | None = None) -> str:
        """A ``response_url`` for a slash command or an interaction by ``user`` in ``channel``.

        Args:
            channel: where the command or click happened.
            user: who did it (ephemeral responses are shown to them).
            message_ts: the message clicked on (``replace_original`` / ``delete_original`` act on it).

        Returns:
            The absolute URL.

        Raises:
            RuntimeError: :attr:`base_url` is not set yet.
        """
        if self.base_url is None:
            raise RuntimeError("FakeSlack.base_url is not set: serve the fake first")
        url = ResponseUrl(uuid.uuid4().hex, channel, user, message_ts)
        with self._lock:
            self._response_urls[url.id] = url
        return f"{self.base_url}/response/{url.id}"

    # --- what the bot did ---------------------------------------------------------------------

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first."""
        with self._lock:
            return [m for m in self._state.messages.get(channel, []) if m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies in the thread under message ``ts``, oldest first (the parent excluded)."""
        with self._lock:
            return [m for m in self._state.messages.get(channel, []) if m.thread_ts == ts]

    def message(self, channel: str, ts: str) -> Message | None:
        """One message (top-level or reply) by its ``ts``."""
        with self._lock:
            return next((m for m in self._state.messages.get(channel, []) if m.ts == ts), None)

    def all_messages(self) -> list[Message]:
        """Every message in every channel, in the order they were posted."""
        with self._lock:
            everything = [m for ms in self._state.messages.values() for m in ms]
        return sorted(everything, key=lambda m: float(m.ts))

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages (to ``user``, or to anyone), oldest first."""
        with self._lock:
            return [e for e in self._state.ephemerals if user is None or e.user == user]

    def last_card(self, channel: str | None = None) -> Message | None:
        """The most recently posted message with buttons, thread replies included (in ``channel``,
        or anywhere)."""
        candidates = [m for m in self.all_messages() if channel is None or m.channel == channel]
        return next((m for m in reversed(candidates) if m.buttons), None)

    def user(self, user_id: str) -> User | None:
        """A workspace member by id."""
        with self._lock:
            return self._users.get(user_id)

    def views(self) -> dict[str, dict[str, Any]]:
        """Open modals by view id."""
        with self._lock:
            return dict(self._state.views)

    def home(self, user: str) -> dict[str, Any] | None:
        """The Home tab published for ``user``."""
        with self._lock:
            return self._state.home.get(user)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one Web API method."""
        return [c for c in list(self.calls) if c.method == method]

    # --- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        self.in_flight += 1
        try:
            return await self._dispatch(request)
        finally:
            self.in_flight -= 1

    async def _dispatch(self, request: Request) -> Response:
        method = request.path_params["method"]
        params, content_type = await _read_params(request)
        token = _bearer(request) or params.pop("token", None)
        call = Call(method, params, token, content_type)
        self.calls.append(call)
        limited = self._limited(method)
        if limited is not None:
            call.ok, call.error = False, "ratelimited"
            return JSONResponse(
                {"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": str(limited)}
            )
        if method == "apps.connections.open":
            return self._connections_open(call)
        handler = _METHODS.get(method)
        try:
            if not token:
                raise SlackError("not_authed")
            if self.tokens is not None and token not in self.tokens:
                raise SlackError("invalid_auth")
            if handler is None:
                raise SlackError("unknown_method")
            with self._lock:
                body = handler(self, params)
        except SlackError as exc:
            call.ok, call.error = False, exc.error
            return JSONResponse({"ok": False, "error": exc.error, **exc.extra})
        call.ok = True
        return JSONResponse({"ok": True, **body})

    def _connections_open(self, call: Call) -> Response:
        """``apps.connections.open``: only with an app-level token, only where Socket Mode is on."""
        try:
            if self.socket_mode is None:
                raise SocketRefused("socket_mode_not_enabled")
            url = self.socket_mode.open_connection(call.token)
        except SocketRefused as exc:
            call.ok, call.error = False, exc.error
            return JSONResponse({"ok": False, "error": exc.error})
        call.ok = True
        return JSONResponse({"ok": True, "url": url})

    def _limited(self, method: str) -> int | None:
        with self._lock:
            for limit in self._limits:
                if limit.method not in (None, method):
                    continue
                limit.seen += 1
                if limit.remaining is not None and limit.remaining > 0:
                    limit.remaining -= 1
                    return limit.retry_after
                if limit.every is not None and limit.seen % limit.every == 0:
                    return limit.retry_after
        return None

    async def _respond(self, request: Request) -> Response:
        self.in_flight += 1
        try:
            url_id = request.path_params["url_id"]
            try:
                payload = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                return PlainTextResponse("invalid_payload", status_code=400)
            with self._lock:
                url = self._response_urls.get(url_id)
                if url is None or url.uses >= RESPONSE_URL_USES:
                    self.responses.append(ResponsePost(url_id, payload, accepted=False))
                    return PlainTextResponse("used_url" if url else "expired_url", status_code=404)
                url.uses += 1
                try:
                    blocks = check_blocks(payload.get("blocks", []))
                except SlackError as exc:
                    self.responses.append(ResponsePost(url_id, payload, accepted=False))
                    return PlainTextResponse(exc.error, status_code=400)
                self.responses.append(ResponsePost(url_id, payload))
                self._apply_response(url, payload, blocks)
            return PlainTextResponse("ok")
        finally:
            self.in_flight -= 1

    def _apply_response(
        self, url: ResponseUrl, payload: dict[str, Any], blocks: list[dict[str, Any]]
    ) -> None:
        text = str(payload.get("text", ""))
        original = self._find(url.channel, url.message_ts) if url.message_ts else None
        if payload.get("delete_original") and original is not None:
            self._state.messages[url.channel].remove(original)
        elif payload.get("replace_original") and original is not None:
            original.text, original.blocks, original.edits = text, blocks, original.edits + 1
        elif payload.get("response_type") == "in_channel":
            self._post(url.channel, text, blocks, payload.get("thread_ts"))
        else:
            self._state.ephemerals.append(
                Ephemeral(url.channel, url.user, text, blocks, payload.get("thread_ts"), via="response_url")
            )

    # --- state helpers (called with the lock held) ----------------------------------------------

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{self._start_ts + n // 1_000_000}.{n % 1_000_000:06d}"

    def _find(self, channel: str, ts: str | None) -> Message | None:
        return next((m for m in self._state.messages.get(channel, []) if m.ts == ts), None)

    def _writable(self, channel_id: object) -> Channel:
        if not isinstance(channel_id, str) or not channel_id:
            raise SlackError("channel_not_found")
        channel = self._channels.get(channel_id) or Channel(channel_id, channel_id.lower())
        if channel.is_private and not channel.bot_is_member:
            raise SlackError(channel.refusal)
        return channel

    def _post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: object) -> Message:
        message = Message(channel, self._next_ts(), text, blocks, self.bot_user_id, _str_or_none(thread_ts))
        self._state.messages.setdefault(channel, []).append(message)
        return message


# --- the Web API methods (each takes the fake and the params, returns the answer's fields) ------


def _content(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = params.get("text")
    blocks = check_blocks(params["blocks"]) if params.get("blocks") is not None else []
    if not text and not blocks:
        raise SlackError("no_text")
    if text is not None and len(str(text)) > MAX_TEXT:
        raise SlackError("msg_too_long")
    return str(text or ""), blocks


def _chat_post_message(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._writable(params.get("channel"))
    text, blocks = _content(params)
    thread_ts = _str_or_none(params.get("thread_ts"))
    if thread_ts is not None:
        parent = fake._find(channel.id, thread_ts)
        if parent is None:
            raise SlackError("invalid_thread_ts")
        thread_ts = parent.thread_ts or parent.ts  # a reply's ts threads under its parent, as in Slack
    message = fake._post(channel.id, text, blocks, thread_ts)
    message.metadata = params.get("metadata")
    return {"channel": channel.id, "ts": message.ts, "message": _as_slack(message, fake)}


def _chat_update(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._writable(params.get("channel"))
    message = fake._find(channel.id, _str_or_none(params.get("ts")))
    if message is None:
        raise SlackError("message_not_found")
    if message.user != fake.bot_user_id:
        raise SlackError("cant_update_message")
    text, blocks = _content(params)
    message.text, message.blocks, message.edits = text, blocks, message.edits + 1
    return {"channel": channel.id, "ts": message.ts, "text": text, "message": _as_slack(message, fake)}


def _chat_post_ephemeral(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._writable(params.get("channel"))
    user = _str_or_none(params.get("user"))
    if user is None or user not in fake._users:
        raise SlackError("user_not_in_channel")
    text, blocks = _content(params)
    thread_ts = _str_or_none(params.get("thread_ts"))
    ts = fake._next_ts()
    # Slack shows an ephemeral reply in a thread only if the thread exists; it is dropped otherwise.
    if thread_ts is None or any(m.thread_ts == thread_ts for m in fake._state.messages.get(channel.id, [])):
        fake._state.ephemerals.append(Ephemeral(channel.id, user, text, blocks, thread_ts))
    return {"message_ts": ts}


def _chat_get_permalink(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = str(params.get("channel", ""))
    message = fake._find(channel, _str_or_none(params.get("message_ts")))
    if message is None:
        raise SlackError("message_not_found")
    link = f"https://{fake.team_id.lower()}.slack.com/archives/{channel}/p{message.ts.replace('.', '')}"
    if message.thread_ts:
        link += f"?thread_ts={message.thread_ts}&cid={channel}"
    return {"channel": channel, "permalink": link}


def _views_open(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("trigger_id"):
        raise SlackError("invalid_trigger_id")
    view = check_view(params.get("view"))
    view_id = f"V{next(fake._views):08d}"
    stored = {**view, "id": view_id, "hash": uuid.uuid4().hex[:12], "team_id": fake.team_id}
    fake._state.views[view_id] = stored
    return {"view": stored}


def _views_update(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    view_id = _str_or_none(params.get("view_id"))
    external = _str_or_none(params.get("external_id"))
    current = fake._state.views.get(view_id or "") or next(
        (v for v in fake._state.views.values() if external and v.get("external_id") == external), None
    )
    if current is None:
        raise SlackError("not_found")
    if params.get("hash") and params["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    view = check_view(params.get("view"))
    stored = {**view, "id": current["id"], "hash": uuid.uuid4().hex[:12], "team_id": fake.team_id}
    fake._state.views[current["id"]] = stored
    return {"view": stored}


def _views_publish(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    user = _str_or_none(params.get("user_id"))
    if user is None or user not in fake._users:
        raise SlackError("user_not_found")
    view = check_view(params.get("view"))
    if view.get("type") != "home":
        raise SlackError("invalid_arguments", errors=["view.type must be home"])
    fake._state.home[user] = view
    return {"view": {**view, "id": f"VHOME{user}"}}


def _users_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    user = fake._users.get(str(params.get("user", "")))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.as_slack(fake.team_id)}


def _auth_test(fake: FakeSlack, _params: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": f"https://{fake.team_id.lower()}.slack.com/",
        "team": "Demo",
        "user": "flagops",
        "team_id": fake.team_id,
        "user_id": fake.bot_user_id,
        "bot_id": fake.bot_id,
        "is_enterprise_install": False,
    }


def _conversations_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel_id = str(params.get("channel", ""))
    channel = fake._channels.get(channel_id) or Channel(channel_id, channel_id.lower())
    if not channel_id or (channel.is_private and not channel.bot_is_member):
        raise SlackError("channel_not_found")
    return {
        "channel": {
            "id": channel.id,
            "name": channel.name,
            "is_channel": True,
            "is_private": channel.is_private,
            "is_member": channel.bot_is_member,
            "is_archived": False,
        }
    }


def _usergroups_users_list(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    members = fake.usergroups.get(str(params.get("usergroup", "")))
    if members is None:
        raise SlackError("no_such_subteam")
    return {"users": list(members)}


_METHODS = {
    "chat.postMessage": _chat_post_message,
    "chat.update": _chat_update,
    "chat.postEphemeral": _chat_post_ephemeral,
    "chat.getPermalink": _chat_get_permalink,
    "views.open": _views_open,
    "views.update": _views_update,
    "views.publish": _views_publish,
    "users.info": _users_info,
    "auth.test": _auth_test,
    "conversations.info": _conversations_info,
    "usergroups.users.list": _usergroups_users_list,
}


def _as_slack(message: Message, fake: FakeSlack) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "type": "message",
        "user": message.user,
        "bot_id": fake.bot_id,
        "text": message.text,
        "ts": message.ts,
        "blocks": message.blocks,
    }
    if message.thread_ts:
        shaped["thread_ts"] = message.thread_ts
    return shaped


def _str_or_none(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[len("Bearer ") :].strip() or None if header.startswith("Bearer ") else None


async def _read_params(request: Request) -> tuple[dict[str, Any], str]:
    """Query, form and JSON body merged, as Slack accepts each; JSON-encoded fields decoded."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if raw and content_type.startswith("application/json"):
        body = json.loads(raw)
        if isinstance(body, dict):
            params.update(body)
    elif raw:
        params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for key in ("blocks", "view", "metadata", "attachments"):
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            # Undecodable JSON stays a string, which validation refuses as Slack does.
            with contextlib.suppress(json.JSONDecodeError):
                params[key] = json.loads(value)
    return params, content_type
