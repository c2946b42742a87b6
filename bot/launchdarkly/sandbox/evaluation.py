"""Segments and flag evaluation, as the sandbox serves them.

- ``GET /api/v2/segments/{project}/{env}``: the environment's segments (a collection);
  ``GET .../{key}`` one of them (404 ``not_found`` when unknown).
- ``POST /api/v2/projects/{project}/environments/{env}/flags/evaluate``: the body is the context
  itself (``{"kind": "user", "key": "alice", ...}``, a ``multi`` context, or an old-style user);
  every live flag of the project is evaluated for it (``commands.evaluation``: targets, rules with
  every clause operator, segments, prerequisites, rollouts bucketed as the SDKs do), unless
  ``filter`` narrows them (``query equals <text>``: key or name contains the text, any case;
  ``tags contains ["a","b"]``: every tag). Each item: ``key``, ``name``, ``_value``, ``reason``,
  ``_links``. A body that is not a context answers 400 ``invalid_request``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.launchdarkly.sandbox.changes import get_environment, get_project, invalid, not_found
from bot.launchdarkly.sandbox.state import JsonDoc, SandboxState
from commands.contexts import ContextError, individual_contexts
from commands.evaluation import evaluate

_FILTER = re.compile(r"(\w+)\s+(equals|contains)\s+(\[[^\]]*\]|[^,]+)")


class _Account(Protocol):
    def __call__(self, request: Request, *, write: bool = ..., beta: bool = ...) -> Any: ...


def _filters(text: str) -> list[tuple[str, Any]]:
    """``query equals x, tags contains ["a","b"]`` as (field, value) terms."""
    terms: list[tuple[str, Any]] = []
    for match in _FILTER.finditer(text):
        field, op, raw = match.group(1), match.group(2), match.group(3).strip()
        value: Any = raw
        if op == "contains":
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise invalid(f"Invalid filter value for {field}: {raw}") from exc
            if not isinstance(value, list):
                raise invalid(f"Invalid filter value for {field}: {raw}")
        terms.append((field, value))
    return terms


def _wanted(flag: JsonDoc, terms: list[tuple[str, Any]]) -> bool:
    for field, value in terms:
        if field == "query":
            text = str(value).lower()
            if text not in flag["key"].lower() and text not in str(flag.get("name", "")).lower():
                return False
        elif field == "tags" and not all(t in (flag.get("tags") or []) for t in value):
            return False
    return True


class EvaluationRoutes:
    """The route handlers, around the sandbox's state."""

    def __init__(self, state: SandboxState, account: _Account) -> None:
        self.state = state
        self.account = account

    async def list_segments(self, request: Request) -> Response:
        self.account(request)
        project = get_project(self.state, request.path_params["project"])
        env = request.path_params["env"]
        get_environment(project, env)
        items = list(project.segments.get(env, {}).values())
        self_link = {"href": f"/api/v2/segments/{project.doc['key']}/{env}", "type": "application/json"}
        return JSONResponse({"items": items, "totalCount": len(items), "_links": {"self": self_link}})

    async def get_segment(self, request: Request) -> Response:
        self.account(request)
        project = get_project(self.state, request.path_params["project"])
        env = request.path_params["env"]
        get_environment(project, env)
        segment = project.segments.get(env, {}).get(request.path_params["key"])
        if segment is None:
            raise not_found(f"Unknown segment key '{request.path_params['key']}'")
        return JSONResponse(segment)

    async def evaluate(self, request: Request) -> Response:
        self.account(request)
        project_key, env = request.path_params["project"], request.path_params["env"]
        project = get_project(self.state, project_key)
        get_environment(project, env)
        try:
            context = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise invalid("The request body is not valid JSON") from exc
        try:
            individual_contexts(context)
        except ContextError as exc:
            raise invalid(f"Invalid context: {exc}") from exc
        terms = _filters(request.query_params.get("filter", ""))
        segments = project.segments.get(env, {})
        items: list[JsonDoc] = []
        for key, flag in project.flags.items():
            if flag.get("archived") or not _wanted(flag, terms):
                continue
            result = evaluate(flag, env, context, flags=project.flags, segments=segments)
            site = f"/{project_key}/{env}/features/{key}/targeting"
            items.append(
                {
                    "_links": {
                        "self": {"href": str(request.url.path), "type": "application/json"},
                        "site": {"href": site, "type": "text/html"},
                    },
                    "_value": result.value,
                    "key": key,
                    "name": flag.get("name", key),
                    "reason": result.reason,
                }
            )
        self_link = {"href": str(request.url.path), "type": "application/json"}
        return JSONResponse({"items": items, "totalCount": len(items), "_links": {"self": self_link}})


def routes(state: SandboxState, account: _Account) -> list[Route]:
    """The segment and evaluation routes over ``state`` (``account``: the sandbox's token check)."""
    r = EvaluationRoutes(state, account)
    flags = "/api/v2/projects/{project}/environments/{env}/flags"
    return [
        Route("/api/v2/segments/{project}/{env}", r.list_segments, methods=["GET"]),
        Route("/api/v2/segments/{project}/{env}/{key}", r.get_segment, methods=["GET"]),
        Route(f"{flags}/evaluate", r.evaluate, methods=["POST"]),
    ]
