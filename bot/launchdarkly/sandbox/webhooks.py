"""Webhooks in the sandbox: ``POST/GET/PATCH/DELETE /api/v2/webhooks``, and signed deliveries.

As LaunchDarkly does, every change recorded in the audit log is POSTed to each webhook that is
``on`` (and whose ``statements``, when it has any, allow the entry's resource), the body an audit
log entry (the list shape: no ``previousVersion`` / ``currentVersion``), signed when ``sign`` is
true: ``X-LD-Signature`` = hex HMAC-SHA256 of the raw body with the webhook's ``secret``.

Deliveries go over real HTTP (httpx), after the request that made the change has been answered
(each in its own task, as LaunchDarkly delivers asynchronously), and only to loopback addresses: a
sandbox never calls out. Whatever wrote the entry (the bot, another tool with bob's token, the
``/_sandbox/clock`` running a scheduled change) triggers it, since delivery follows any request.
``state.deliveries`` records each attempt (webhook, entry, status) for tests.

Creating and changing webhooks needs an admin-level token (``state.admin_token``); a writer's token
is answered 403, as LaunchDarkly does.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.launchdarkly.sandbox import changes
from bot.launchdarkly.sandbox.changes import ApiError, invalid
from bot.launchdarkly.sandbox.state import JsonDoc, SandboxState, new_id

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SIGNATURE_HEADER = "X-LD-Signature"


def signature(secret: str, body: bytes) -> str:
    """LaunchDarkly's webhook signature: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _admin(state: SandboxState, request: Request) -> None:
    token = request.headers.get("authorization")
    if token is not None and token == state.admin_token:
        return
    if state.account_for(token) is None:
        raise ApiError(401, "unauthorized", "Invalid access token")
    raise ApiError(403, "forbidden", "Managing webhooks needs an admin-level access token")


def _public(doc: JsonDoc) -> JsonDoc:
    return dict(doc)


def _allowed(hook: JsonDoc, entry: JsonDoc) -> bool:
    """Whether a webhook's statements let an entry through (no statements: everything)."""
    statements = hook.get("statements") or []
    if not statements:
        return True
    resources = [str(a.get("resource", "")) for a in entry.get("accesses") or []]
    allowed = False
    for statement in statements:
        patterns = [str(p).split(";", 1)[0] for p in statement.get("resources") or []]
        hit = any(fnmatch.fnmatchcase(r, p) for r in resources for p in patterns)
        if hit and statement.get("effect") == "deny":
            return False
        allowed = allowed or (hit and statement.get("effect", "allow") == "allow")
    return allowed


def payload_of(entry: JsonDoc) -> bytes:
    """The body LaunchDarkly sends: the entry as the audit log lists it (no versions)."""
    listed = {k: v for k, v in entry.items() if k not in ("previousVersion", "currentVersion")}
    return json.dumps(listed, separators=(",", ":")).encode()


class WebhookRoutes:
    """The ``/api/v2/webhooks`` family over one state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def create(self, request: Request) -> Response:
        _admin(self.state, request)
        body = json.loads(await request.body() or b"null")
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object")
        for name in ("url", "sign", "on"):
            if name not in body:
                raise invalid(f"{name} is required")
        if not isinstance(body["url"], str) or not isinstance(body["sign"], bool):
            raise invalid("url must be a string and sign a boolean")
        hook_id = new_id()
        doc: JsonDoc = {
            "_links": {"self": {"href": f"/api/v2/webhooks/{hook_id}", "type": "application/json"}},
            "_id": hook_id,
            "name": body.get("name"),
            "url": body["url"],
            "on": bool(body["on"]),
            "sign": body["sign"],
            "tags": list(body.get("tags") or []),
            "statements": list(body.get("statements") or []),
        }
        if body["sign"]:
            doc["secret"] = body.get("secret") or secrets.token_hex(16)
        self.state.webhooks[hook_id] = doc
        return JSONResponse(_public(doc))

    async def list(self, request: Request) -> Response:
        _admin(self.state, request)
        items = [_public(d) for d in self.state.webhooks.values()]
        return JSONResponse({"items": items, "_links": {}})

    def _hook(self, request: Request) -> JsonDoc:
        hook = self.state.webhooks.get(request.path_params["id"])
        if hook is None:
            raise changes.not_found(f"Unknown webhook '{request.path_params['id']}'")
        return hook

    async def get(self, request: Request) -> Response:
        _admin(self.state, request)
        return JSONResponse(_public(self._hook(request)))

    async def patch(self, request: Request) -> Response:
        _admin(self.state, request)
        hook = self._hook(request)
        ops = json.loads(await request.body() or b"null")
        editable = {k: hook.get(k) for k in ("name", "url", "on", "sign", "secret", "tags", "statements")}
        result = changes.patch_document(editable, ops, editable=editable)
        hook.update({k: v for k, v in result.items() if k in editable})
        return JSONResponse(_public(hook))

    async def delete(self, request: Request) -> Response:
        _admin(self.state, request)
        del self.state.webhooks[self._hook(request)["_id"]]
        return Response(status_code=204)


def routes(state: SandboxState) -> list[Route]:
    r = WebhookRoutes(state)
    return [
        Route("/api/v2/webhooks", r.list, methods=["GET"]),
        Route("/api/v2/webhooks", r.create, methods=["POST"]),
        Route("/api/v2/webhooks/{id}", r.get, methods=["GET"]),
        Route("/api/v2/webhooks/{id}", r.patch, methods=["PATCH"]),
        Route("/api/v2/webhooks/{id}", r.delete, methods=["DELETE"]),
    ]


class WebhookDelivery:
    """Delivers each new audit log entry to the webhooks, once, in its own task."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.sent: set[str] = {str(e["_id"]) for e in state.ld_audit}
        self.tasks: set[asyncio.Task[None]] = set()

    def flush(self) -> None:
        """Start delivering every entry recorded since the last flush."""
        fresh = [e for e in self.state.ld_audit if str(e["_id"]) not in self.sent]
        for entry in fresh:
            self.sent.add(str(entry["_id"]))
            for hook in list(self.state.webhooks.values()):
                if hook.get("on") and _allowed(hook, entry):
                    task = asyncio.get_running_loop().create_task(self.deliver(hook, entry))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)

    async def deliver(self, hook: JsonDoc, entry: JsonDoc) -> None:
        """POST one entry to one webhook (loopback only), and record the answer."""
        body = payload_of(entry)
        record: dict[str, Any] = {"webhookId": hook["_id"], "entryId": entry["_id"], "status": None}
        self.state.deliveries.append(record)
        host = (urlsplit(str(hook["url"])).hostname or "").lower()
        if host not in _LOOPBACK:
            record["status"] = "refused: not a loopback address"
            return
        headers = {"Content-Type": "application/json", "User-Agent": "LaunchDarkly-Sandbox-Webhook"}
        if hook.get("sign") and hook.get("secret"):
            headers[SIGNATURE_HEADER] = signature(str(hook["secret"]), body)
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.post(str(hook["url"]), content=body, headers=headers)
            record["status"] = answer.status_code
        except httpx.HTTPError as error:
            record["status"] = type(error).__name__


class WebhookMiddleware:
    """After each request, deliver what it recorded (so any write reaches the webhooks)."""

    def __init__(self, app: ASGIApp, delivery: WebhookDelivery) -> None:
        self.app = app
        self.delivery = delivery

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.delivery.flush()
