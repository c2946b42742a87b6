"""The sandbox's request log and fault injection: an ASGI middleware in front of the routes.

Every LaunchDarkly API request (not ``/_sandbox/`` ones) is logged (method, path, query, body,
answer status) and counted; ``state.faults`` then decides whether it is delayed, answered 429 or
an error status, hangs, or has its connection dropped.

A dropped connection is made portable across ASGI servers: the middleware starts the response,
sends part of the body, then raises, and the server (uvicorn) closes the socket mid-response,
which the client sees exactly as a connection lost mid-request.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.launchdarkly.sandbox.state import JsonDoc, SandboxState


class DroppedConnection(Exception):
    """Raised on purpose after a partial response, so the server drops the connection."""


def _every(n: int, count: int) -> bool:
    return n > 0 and count % n == 0


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class SandboxMiddleware:
    """Log, count and possibly sabotage each LaunchDarkly API request."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        state = self.state
        state.request_count += 1
        count = state.request_count
        method = scope["method"]
        entry: JsonDoc = {
            "method": method,
            "path": scope["path"],
            "query": dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            "body": _decode(body),
            "contentType": headers.get("content-type"),
            "ldApiVersion": headers.get("ld-api-version"),
            "userAgent": headers.get("user-agent"),
            "status": None,
        }
        state.requests.append(entry)
        faults = state.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        counted = faults.applies_to(method, scope["path"])
        if counted and _every(faults.rate_limit_every, count):
            await self._rate_limited(send, entry)
            return
        if counted and _every(faults.error_every, count):
            answer = _error_body(faults.error_status)
            if faults.error_message:
                answer["message"] = faults.error_message
            await _send_json(send, faults.error_status, answer, entry)
            return
        drop = counted and _every(faults.drop_every, count)
        hang = counted and faults.hang > 0 and _every(faults.hang_every, count)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        if not faults.apply_before_fault:
            if hang:
                await asyncio.sleep(faults.hang)
            if drop:
                entry["status"] = "dropped"
                await _drop(send)
        if not (drop or hang) or not faults.apply_before_fault:
            await self.app(scope, replay, _recording(send, entry))
            return
        # The request is handled (and any change applied) before the fault strikes.
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, replay, _recording(hold, entry))
        if hang:
            await asyncio.sleep(faults.hang)
        if drop:
            entry["status"] = "dropped"
            await _drop(send)
        for message in held:
            await send(message)

    async def _rate_limited(self, send: Send, entry: JsonDoc) -> None:
        faults = self.state.faults
        reset_ms = int((time.time() + faults.reset_after) * 1000)
        headers = [
            (b"x-ratelimit-reset", str(reset_ms).encode()),
            (b"x-ratelimit-global-remaining", b"0"),
            (b"x-ratelimit-route-remaining", b"0"),
        ]
        if faults.retry_after is not None:
            value = faults.retry_after
            text = str(int(value)) if float(value).is_integer() else str(value)
            headers.append((b"retry-after", text.encode()))
        body = {
            "code": "rate_limited",
            "message": "You've exceeded the API rate limit. Try again later.",
            "id": str(uuid.uuid4()),
        }
        await _send_json(send, 429, body, entry, headers)


def _error_body(status: int) -> JsonDoc:
    code = {
        500: "internal_server_error",
        502: "bad_gateway",
        503: "service_unavailable",
        422: "patch_failed",
        409: "optimistic_locking_error",
        400: "invalid_request",
    }.get(status, "error")
    return {"code": code, "message": f"Injected fault: HTTP {status}", "id": str(uuid.uuid4())}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _recording(send: Send, entry: JsonDoc) -> Send:
    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = message["status"]
        await send(message)

    return recording_send


async def _send_json(
    send: Send, status: int, body: JsonDoc, entry: JsonDoc, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    entry["status"] = status
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": payload})


async def _drop(send: Send) -> None:
    """Promise a body, send part of it, and give up: the server closes the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
    raise DroppedConnection("sandbox fault: connection dropped on purpose")
