"""The sandbox's HTTP face: LaunchDarkly's routes and the ``/_sandbox/`` control endpoints.

LaunchDarkly routes answer in LaunchDarkly's shapes and statuses (401 for an unknown token, 403
for a reader's write or a beta route without ``LD-API-Version: beta``, 404 bodies
``{code, message, id}``). Control endpoints, for tests and demos, never collide with them:

* ``GET /_sandbox/requests``: the request log; ``DELETE`` clears it.
* ``GET /_sandbox/audit``: who changed what.
* ``GET|POST /_sandbox/faults``: read or replace the fault settings (``Faults``).
* ``GET|POST /_sandbox/switches``: read or replace the undocumented-behaviour switches.
* ``POST /_sandbox/clock`` ``{"now": ms}``: run the scheduled changes due at that time.
* ``POST /_sandbox/reset``: back to the initial data, no faults, empty log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.launchdarkly.sandbox import approvals, changes, evaluation, oauth, webhooks
from bot.launchdarkly.sandbox.changes import ApiError, get_environment, get_flag, get_project, invalid
from bot.launchdarkly.sandbox.faults import SandboxMiddleware
from bot.launchdarkly.sandbox.state import (
    Account,
    Faults,
    JsonDoc,
    SandboxState,
    StoredApproval,
    StoredLink,
    Switches,
    new_id,
)
from commands.patches import PROJECT_FIELDS, PatchRefusal, check_project_document, normalise_project

SEMANTIC_PATCH = "domain-model=launchdarkly.semanticpatch"
Handler = Callable[[Request], Awaitable[Response]]


def _true(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid("The request body is not valid JSON") from exc


def _omit(doc: JsonDoc, fields: list[str]) -> JsonDoc:
    """``doc`` without ``fields`` (the switches that make an answer sparse)."""
    return {k: v for k, v in doc.items() if k not in fields} if fields else doc


def _member_expanded(request: Request, member: JsonDoc) -> JsonDoc:
    """A member as LaunchDarkly answers it: ``customRoles`` (keys) always, ``roleAttributes`` only
    with ``expand=roleAttributes``."""
    expand = {e.strip() for e in request.query_params.get("expand", "").split(",")}
    if "roleAttributes" in expand:
        return member
    return {k: v for k, v in member.items() if k != "roleAttributes"}


def _paged(request: Request, items: list[JsonDoc], default_limit: int = 20, max_limit: int = 100) -> JsonDoc:
    """A LaunchDarkly collection page: items, totalCount and first/prev/next/last links."""
    try:
        limit = min(max(int(request.query_params.get("limit", default_limit)), 1), max_limit)
        offset = max(int(request.query_params.get("offset", 0)), 0)
    except ValueError as exc:
        raise invalid("limit and offset must be integers") from exc
    total = len(items)

    def link(at: int) -> JsonDoc:
        query = {**request.query_params, "limit": str(limit), "offset": str(at)}
        return {"href": f"{request.url.path}?{urlencode(query)}", "type": "application/json"}

    links: JsonDoc = {
        "self": link(offset),
        "first": link(0),
        "last": link(max(total - 1, 0) // limit * limit),
    }
    if offset + limit < total:
        links["next"] = link(offset + limit)
    if offset > 0:
        links["prev"] = link(max(offset - limit, 0))
    return {"items": items[offset : offset + limit], "totalCount": total, "_links": links}


def _spec_matches(spec: str, resource: str) -> bool:
    """Whether a resource (``proj/demo:env/test:flag/x``) falls under a specifier, ``*`` matching
    any key and a specifier naming fewer parts matching every resource under them."""
    wanted = dict(part.split("/", 1) for part in spec.split(":") if "/" in part)
    have = dict(part.split("/", 1) for part in resource.split(":") if "/" in part)
    return all(key in have and (value == "*" or value == have[key]) for key, value in wanted.items())


def _environments_of(flag: JsonDoc, keys: Iterable[str] | None, summary: bool) -> JsonDoc:
    doc = dict(flag)
    envs = flag.get("environments") or {}
    if keys is not None:
        envs = {k: v for k, v in envs.items() if k in set(keys)}
    if summary:
        hidden = ("targets", "contextTargets", "rules", "prerequisites")
        envs = {k: {f: x for f, x in v.items() if f not in hidden} for k, v in envs.items()}
    doc["environments"] = envs
    return doc


def _matches(flag: JsonDoc, filters: dict[str, str], tag: str | None) -> bool:
    state = filters.get("state", "live")
    archived, deprecated = bool(flag.get("archived")), bool(flag.get("deprecated"))
    if (state == "archived") != archived or (state == "deprecated" and not deprecated):
        return False
    if state == "live" and deprecated:
        return False
    text = filters.get("query", "").lower()
    if text and text not in flag["key"].lower() and text not in str(flag.get("name", "")).lower():
        return False
    wanted = [t for t in filters.get("tags", "").split("+") if t] + ([tag] if tag else [])
    return all(t in (flag.get("tags") or []) for t in wanted)


class SandboxRoutes:
    """The route handlers, around one ``SandboxState``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # --- auth ------------------------------------------------------------------------------

    def account(self, request: Request, *, write: bool = False, beta: bool = False) -> Account:
        account = self.state.account_for(request.headers.get("authorization"))
        if account is None:
            raise ApiError(401, "unauthorized", "Invalid access token")
        if beta and request.headers.get("ld-api-version") != "beta":
            raise ApiError(
                403, "forbidden", "This is a beta resource: send the header 'LD-API-Version: beta'"
            )
        if write and not account.writer:
            raise ApiError(403, "forbidden", "Access to the requested resource was denied")
        return account

    # --- flags -----------------------------------------------------------------------------

    async def list_flags(self, request: Request) -> Response:
        self.account(request)
        project = get_project(self.state, request.path_params["project"])
        filters: dict[str, str] = {}
        for term in request.query_params.get("filter", "").split(","):
            name, _, value = term.partition(":")
            if name.strip():
                filters[name.strip()] = value.strip()
        env = request.query_params.get("env")
        summary = request.query_params.get("summary", "true").lower() not in ("0", "false")
        items = []
        for flag in project.flags.values():
            if _matches(flag, filters, request.query_params.get("tag")):
                doc = _environments_of(flag, env.split(",") if env else None, summary)
                if not env:
                    # API version 20240415 returns environments only when filtered by environment.
                    doc.pop("environments")
                items.append(doc)
        return JSONResponse(_paged(request, items))

    async def get_flag(self, request: Request) -> Response:
        self.account(request)
        project = get_project(self.state, request.path_params["project"])
        flag = get_flag(project, request.path_params["key"])
        env = request.query_params.get("env")
        return JSONResponse(_environments_of(flag, env.split(",") if env else None, summary=False))

    async def patch_flag(self, request: Request) -> Response:
        account = self.account(request, write=True)
        project, key = request.path_params["project"], request.path_params["key"]
        body = await _json_body(request)
        dry_run, ignore = _true(request, "dryRun"), _true(request, "ignoreConflicts")
        if SEMANTIC_PATCH in request.headers.get("content-type", ""):
            doc = changes.semantic_patch(
                self.state, account, project, key, body, dry_run=dry_run, ignore_conflicts=ignore
            )
        else:
            doc = changes.plain_patch(
                self.state, account, project, key, body, dry_run=dry_run, ignore_conflicts=ignore
            )
        if not dry_run and self.state.switches.patch_answer_omits:
            doc = {k: v for k, v in doc.items() if k not in self.state.switches.patch_answer_omits}
        return JSONResponse(doc)

    async def flag_statuses(self, request: Request) -> Response:
        self.account(request)
        project_key, env_key = request.path_params["project"], request.path_params["env"]
        project = get_project(self.state, project_key)
        get_environment(project, env_key)
        items = []
        for (env, flag_key), status in project.statuses.items():
            if env == env_key and flag_key in project.flags:
                href = f"/api/v2/flag-statuses/{project_key}/{env_key}/{flag_key}"
                parent = f"/api/v2/flags/{project_key}/{flag_key}"
                links = {
                    "self": {"href": href, "type": "application/json"},
                    "parent": {"href": parent, "type": "application/json"},
                }
                items.append({**status, "_links": links})
        self_link = {"href": f"/api/v2/flag-statuses/{project_key}/{env_key}", "type": "application/json"}
        return JSONResponse({"_links": {"self": self_link}, "items": items})

    # --- audit log ---------------------------------------------------------------------------

    async def list_audit_log(self, request: Request) -> Response:
        """``GET /api/v2/auditlog``: newest first; ``spec``, ``q`` (names), ``before``/``after``
        (ms), ``limit`` 1-20 (default 10); ``_links.next`` pages on by ``before``. List entries
        carry no versions, as LaunchDarkly documents."""
        self.account(request)
        query = request.query_params
        try:
            limit = int(query.get("limit", 10))
            before = int(query["before"]) if "before" in query else None
            after = int(query["after"]) if "after" in query else None
        except ValueError as exc:
            raise invalid("limit, before and after must be integers") from exc
        if not 1 <= limit <= 20:
            raise invalid("limit must be between 1 and 20")
        spec, text = query.get("spec"), (query.get("q") or "").lower()
        found = [
            e
            for e in reversed(self.state.ld_audit)
            if (before is None or e["date"] < before)
            and (after is None or e["date"] > after)
            and (not spec or any(_spec_matches(spec, a["resource"]) for a in e["accesses"]))
            and (not text or text in str(e.get("name", "")).lower())
        ]
        page = found[:limit]
        items = [{k: v for k, v in e.items() if k not in ("previousVersion", "currentVersion")} for e in page]
        links: JsonDoc = {"self": {"href": str(request.url.path), "type": "application/json"}}
        if len(found) > limit:
            next_query = {**query, "before": str(page[-1]["date"]), "limit": str(limit)}
            links["next"] = {"href": f"/api/v2/auditlog?{urlencode(next_query)}", "type": "application/json"}
        return JSONResponse({"items": items, "_links": links})

    async def get_audit_entry(self, request: Request) -> Response:
        self.account(request)
        for entry in self.state.ld_audit:
            if entry["_id"] == request.path_params["id"]:
                return JSONResponse({k: v for k, v in entry.items() if v is not None})
        raise changes.not_found("Unknown audit log entry")

    # --- projects, environments, members --------------------------------------------------------

    def _project_doc(self, request: Request, key: str) -> JsonDoc:
        project = get_project(self.state, key)
        doc = dict(project.doc)
        if "environments" in request.query_params.get("expand", ""):
            items = list(project.environments.values())
            doc["environments"] = {"_links": {}, "totalCount": len(items), "items": items}
        return doc

    async def get_project(self, request: Request) -> Response:
        self.account(request)
        return JSONResponse(self._project_doc(request, request.path_params["project"]))

    async def patch_project(self, request: Request) -> Response:
        account = self.account(request, write=True)
        key = request.path_params["project"]
        project = get_project(self.state, key)
        ops = await _json_body(request)
        # Seed 004 documents no dryRun for projects (nor does the OpenAPI spec): a dryRun
        # parameter is ignored here, the patch applied, so the bot never sends one.
        doc = changes.patch_document(project.doc, ops, editable=PROJECT_FIELDS)
        # Seed 004: "tags are always deduplicated and returned in alphabetical order".
        doc = normalise_project(doc)
        try:
            check_project_document(project.doc, doc)
        except PatchRefusal as refusal:
            raise invalid(f"Invalid patch: {refusal.message}") from refusal
        project.doc = doc
        self.state.record(
            {"memberId": account.member_id, "kind": "patchProject", "project": key, "patch": ops}
        )
        return JSONResponse(self._project_doc(request, key))

    async def list_environments(self, request: Request) -> Response:
        self.account(request)
        project = get_project(self.state, request.path_params["project"])
        return JSONResponse(_paged(request, list(project.environments.values())))

    async def get_environment(self, request: Request) -> Response:
        self.account(request)
        project = get_project(self.state, request.path_params["project"])
        return JSONResponse(get_environment(project, request.path_params["env"]))

    async def list_members(self, request: Request) -> Response:
        self.account(request)
        members = [a.member for a in self.state.accounts]
        for term in request.query_params.get("filter", "").split(","):
            name, _, value = term.partition(":")
            if name == "email":
                emails = {e.lower() for e in value.split("|")}
                members = [m for m in members if m["email"].lower() in emails]
            elif name == "query":
                text = value.lower()
                members = [
                    m
                    for m in members
                    if text in json.dumps([m["email"], m.get("firstName"), m.get("lastName")]).lower()
                ]
        omits = self.state.switches.member_answer_omits
        shown = [_member_expanded(request, _omit(m, omits)) for m in members]
        return JSONResponse(_paged(request, shown))

    async def get_member(self, request: Request) -> Response:
        self.account(request)
        member = self.state.member_by_id(request.path_params["id"])
        if member is None:
            raise changes.not_found(f"Unknown member '{request.path_params['id']}'")
        return JSONResponse(_member_expanded(request, _omit(member, self.state.switches.member_answer_omits)))

    async def get_role(self, request: Request) -> Response:
        """``GET /api/v2/roles/{customRoleKey}`` (by key or id), as LaunchDarkly's ``CustomRole``."""
        self.account(request)
        wanted = request.path_params["key"]
        for role in self.state.roles.values():
            if wanted in (role.get("key"), role.get("_id")):
                return JSONResponse(role)
        raise changes.not_found(f"Unknown custom role '{wanted}'")

    async def team_roles(self, request: Request) -> Response:
        """``GET /api/v2/teams/{teamKey}/roles``: the team's custom roles (``TeamCustomRoles``)."""
        self.account(request)
        team = self.state.teams.get(request.path_params["key"])
        if team is None:
            raise changes.not_found(f"Unknown team '{request.path_params['key']}'")
        items = [
            {"key": key, "name": (self.state.roles.get(key) or {}).get("name", key)}
            for key in team.get("customRoleKeys") or []
        ]
        return JSONResponse(_paged(request, items))

    async def caller_identity(self, request: Request) -> Response:
        account = self.account(request)
        return JSONResponse(
            {
                "accountId": self.state.account_id,
                "authKind": "oauth" if account.oauth else "token",
                "tokenKind": "oauth" if account.oauth else "personal",
                "tokenId": f"token-{account.member_id}",
                "tokenName": f"{account.member['email']} (sandbox)",
                "memberId": account.member_id,
                "serviceToken": False,
            }
        )

    # --- flag links (beta) --------------------------------------------------------------------

    async def list_links(self, request: Request) -> Response:
        self.account(request, beta=True)
        project, flag = request.path_params["project"], request.path_params["flag"]
        get_flag(get_project(self.state, project), flag)
        items = [s.doc for s in self.state.links.values() if (s.project, s.flag) == (project, flag)]
        return JSONResponse({"items": items, "totalCount": len(items), "_links": {}})

    async def create_link(self, request: Request) -> Response:
        account = self.account(request, write=True, beta=True)
        project, flag = request.path_params["project"], request.path_params["flag"]
        get_flag(get_project(self.state, project), flag)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("deepLink"), str):
            raise invalid("deepLink is required")
        now = self.state.clock()
        doc = _link_doc(new_id(), body, account, now)
        self.state.links[doc["_id"]] = StoredLink(project, flag, doc)
        self.state.record(
            {
                "memberId": account.member_id,
                "kind": "createFlagLink",
                "project": project,
                "flag": flag,
                "linkId": doc["_id"],
            }
        )
        return JSONResponse(doc, status_code=201)

    async def patch_link(self, request: Request) -> Response:
        account = self.account(request, write=True, beta=True)
        stored = self._link(request)
        ops = await _json_body(request)
        editable = {
            "title": stored.doc.get("title"),
            "description": stored.doc.get("description"),
            "deepLink": stored.doc["_deepLink"],
        }
        result = changes.patch_document(editable, ops, editable=editable)
        if not isinstance(result.get("deepLink"), str):
            raise invalid("deepLink must be a string")
        stored.doc.update(
            title=result.get("title"), description=result.get("description"), _deepLink=result["deepLink"]
        )
        self.state.record(
            {
                "memberId": account.member_id,
                "kind": "patchFlagLink",
                "project": stored.project,
                "flag": stored.flag,
                "linkId": stored.doc["_id"],
                "patch": ops,
            }
        )
        return JSONResponse(stored.doc)

    async def delete_link(self, request: Request) -> Response:
        account = self.account(request, write=True, beta=True)
        stored = self._link(request)
        del self.state.links[stored.doc["_id"]]
        self.state.record(
            {
                "memberId": account.member_id,
                "kind": "deleteFlagLink",
                "project": stored.project,
                "flag": stored.flag,
                "linkId": stored.doc["_id"],
            }
        )
        return Response(status_code=204)

    def _link(self, request: Request) -> StoredLink:
        project, flag = request.path_params["project"], request.path_params["flag"]
        get_flag(get_project(self.state, project), flag)
        stored = self.state.links.get(request.path_params["id"])
        if stored is None or (stored.project, stored.flag) != (project, flag):
            raise changes.not_found(f"Unknown flag link '{request.path_params['id']}'")
        return stored

    # --- approval requests --------------------------------------------------------------------

    def _scope(self, request: Request) -> tuple[str, str, str]:
        p = request.path_params
        project = get_project(self.state, p["project"])
        get_flag(project, p["flag"])
        get_environment(project, p["env"])
        return p["project"], p["flag"], p["env"]

    async def list_approvals(self, request: Request) -> Response:
        self.account(request)
        scope = self._scope(request)
        items = [s.doc for s in self.state.approvals.values() if (s.project, s.flag, s.env) == scope]
        return JSONResponse({"items": items, "_links": {}})

    async def create_approval(self, request: Request) -> Response:
        account = self.account(request, write=True)
        doc = approvals.create_approval(self.state, account, *self._scope(request), await _json_body(request))
        return JSONResponse(_omit(doc, self.state.switches.approval_answer_omits), status_code=201)

    def _approval(self, request: Request) -> StoredApproval:
        return approvals.find_approval(self.state, *self._scope(request), request.path_params["id"])

    async def get_approval(self, request: Request) -> Response:
        self.account(request)
        return JSONResponse(self._approval(request).doc)

    async def delete_approval(self, request: Request) -> Response:
        account = self.account(request, write=True)
        approvals.delete_approval(self.state, account, self._approval(request))
        return Response(status_code=204)

    async def review_approval(self, request: Request) -> Response:
        account = self.account(request, write=True)
        stored = self._approval(request)
        return JSONResponse(approvals.review_approval(self.state, account, stored, await _json_body(request)))

    async def apply_approval(self, request: Request) -> Response:
        account = self.account(request, write=True)
        stored = self._approval(request)
        return JSONResponse(approvals.apply_approval(self.state, account, stored, await _json_body(request)))

    async def all_approvals(self, request: Request) -> Response:
        self.account(request)
        filters = parse_approval_filter(request.query_params.get("filter", ""))
        expand = set(request.query_params.get("expand", "").split(","))
        items = []
        for stored in self.state.approvals.values():
            doc = approvals.generic_doc(self.state, stored, expand)
            if all(_filter_matches(doc, stored.project, f) for f in filters):
                items.append(doc)
        return JSONResponse(_paged(request, items, max_limit=200))

    async def approval_by_id(self, request: Request) -> Response:
        self.account(request)
        stored = self.state.approvals.get(request.path_params["id"])
        if stored is None:
            raise changes.not_found(f"Unknown approval request '{request.path_params['id']}'")
        expand = set(request.query_params.get("expand", "").split(","))
        return JSONResponse(approvals.generic_doc(self.state, stored, expand))

    # --- scheduled changes ----------------------------------------------------------------------

    async def list_scheduled(self, request: Request) -> Response:
        self.account(request)
        scope = self._scope(request)
        items = [s.doc for s in self.state.scheduled.values() if (s.project, s.flag, s.env) == scope]
        return JSONResponse({"items": items, "_links": {}})

    async def create_scheduled(self, request: Request) -> Response:
        account = self.account(request, write=True)
        doc = approvals.create_scheduled(
            self.state,
            account,
            *self._scope(request),
            await _json_body(request),
            ignore_conflicts=_true(request, "ignoreConflicts"),
        )
        return JSONResponse(doc, status_code=201)

    async def get_scheduled(self, request: Request) -> Response:
        self.account(request)
        return JSONResponse(
            approvals.find_scheduled(self.state, *self._scope(request), request.path_params["id"]).doc
        )

    async def delete_scheduled(self, request: Request) -> Response:
        account = self.account(request, write=True)
        stored = approvals.find_scheduled(self.state, *self._scope(request), request.path_params["id"])
        approvals.delete_scheduled(self.state, account, stored)
        return Response(status_code=204)

    # --- control endpoints ------------------------------------------------------------------------

    async def sandbox_requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.requests.clear()
            return Response(status_code=204)
        return JSONResponse(self.state.requests)

    async def sandbox_audit(self, request: Request) -> Response:
        return JSONResponse(self.state.audit)

    async def sandbox_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.state.faults = Faults.model_validate(await _json_body(request) or {})
            except ValidationError as exc:
                raise invalid(str(exc)) from exc
        return JSONResponse(self.state.faults.model_dump())

    async def sandbox_switches(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.state.switches = Switches.model_validate(await _json_body(request) or {})
            except ValidationError as exc:
                raise invalid(str(exc)) from exc
        return JSONResponse(self.state.switches.model_dump())

    async def sandbox_clock(self, request: Request) -> Response:
        body = await _json_body(request)
        now = body.get("now") if isinstance(body, dict) else None
        if not isinstance(now, int):
            raise invalid('Send {"now": <epoch milliseconds>}')
        return JSONResponse({"ran": approvals.run_due(self.state, now)})

    async def sandbox_reset(self, request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)


def _link_doc(link_id: str, body: JsonDoc, account: Account, now: int) -> JsonDoc:
    given = body.get("timestamp")
    stamp = given if isinstance(given, int) else now
    moment = datetime.fromtimestamp(stamp / 1000, tz=UTC)
    doc: JsonDoc = {
        "_links": {},
        "_id": link_id,
        "_deepLink": body["deepLink"],
        "_timestamp": {
            "milliseconds": stamp,
            "seconds": stamp // 1000,
            "rfc3339": moment.isoformat().replace("+00:00", "Z"),
            "simple": moment.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "_createdAt": now,
        "title": body.get("title"),
        "description": body.get("description"),
        "_member": {
            "_links": {},
            "_id": account.member_id,
            "firstName": account.member.get("firstName"),
            "lastName": account.member.get("lastName"),
        },
    }
    if body.get("key"):
        doc["_key"] = body["key"]
    return doc


def parse_approval_filter(text: str) -> list[tuple[str, str, Any]]:
    """Parse ``field operator value`` terms (``reviewStatus anyOf ["pending"]``, ``x equals y``)."""
    terms = []
    for match in re.finditer(r"(\w+)\s+(anyOf|equals)\s+(\[[^\]]*\]|[^,]+)", text):
        field, op, raw = match.group(1), match.group(2), match.group(3).strip()
        value: Any = raw
        if op == "anyOf":
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise invalid(f"Invalid filter value for {field}: {raw}") from exc
        terms.append((field, op, value))
    return terms


def _filter_matches(doc: JsonDoc, project: str, term: tuple[str, str, Any]) -> bool:
    field, op, value = term
    actual: Any = project if field == "projectKey" else "flag" if field == "resourceKind" else doc.get(field)
    if op == "anyOf":
        if isinstance(actual, list):
            return bool(set(actual) & set(value))
        return actual in value
    return str(actual) == str(value)


def create_app(state: SandboxState) -> Starlette:
    """The sandbox as an ASGI app serving ``state`` (which tests may inspect and change)."""
    r = SandboxRoutes(state)
    flag_env = "/api/v2/projects/{project}/flags/{flag}/environments/{env}"
    links = "/api/v2/flag-links/projects/{project}/flags/{flag}"
    routes = [
        Route("/api/v2/flags/{project}", r.list_flags, methods=["GET"]),
        Route("/api/v2/flags/{project}/{key}", r.get_flag, methods=["GET"]),
        Route("/api/v2/flags/{project}/{key}", r.patch_flag, methods=["PATCH"]),
        Route("/api/v2/flag-statuses/{project}/{env}", r.flag_statuses, methods=["GET"]),
        Route("/api/v2/projects/{project}", r.get_project, methods=["GET"]),
        Route("/api/v2/projects/{project}", r.patch_project, methods=["PATCH"]),
        Route("/api/v2/projects/{project}/environments", r.list_environments, methods=["GET"]),
        Route("/api/v2/projects/{project}/environments/{env}", r.get_environment, methods=["GET"]),
        Route(f"{flag_env}/approval-requests", r.list_approvals, methods=["GET"]),
        Route(f"{flag_env}/approval-requests", r.create_approval, methods=["POST"]),
        Route(f"{flag_env}/approval-requests/{{id}}", r.get_approval, methods=["GET"]),
        Route(f"{flag_env}/approval-requests/{{id}}", r.delete_approval, methods=["DELETE"]),
        Route(f"{flag_env}/approval-requests/{{id}}/reviews", r.review_approval, methods=["POST"]),
        Route(f"{flag_env}/approval-requests/{{id}}/apply", r.apply_approval, methods=["POST"]),
        Route("/api/v2/approval-requests", r.all_approvals, methods=["GET"]),
        Route("/api/v2/approval-requests/{id}", r.approval_by_id, methods=["GET"]),
        Route(f"{flag_env}/scheduled-changes", r.list_scheduled, methods=["GET"]),
        Route(f"{flag_env}/scheduled-changes", r.create_scheduled, methods=["POST"]),
        Route(f"{flag_env}/scheduled-changes/{{id}}", r.get_scheduled, methods=["GET"]),
        Route(f"{flag_env}/scheduled-changes/{{id}}", r.delete_scheduled, methods=["DELETE"]),
        Route(links, r.list_links, methods=["GET"]),
        Route(links, r.create_link, methods=["POST"]),
        Route(f"{links}/{{id}}", r.patch_link, methods=["PATCH"]),
        Route(f"{links}/{{id}}", r.delete_link, methods=["DELETE"]),
        Route("/api/v2/auditlog", r.list_audit_log, methods=["GET"]),
        Route("/api/v2/auditlog/{id}", r.get_audit_entry, methods=["GET"]),
        Route("/api/v2/members", r.list_members, methods=["GET"]),
        Route("/api/v2/members/{id}", r.get_member, methods=["GET"]),
        Route("/api/v2/roles/{key}", r.get_role, methods=["GET"]),
        Route("/api/v2/teams/{key}/roles", r.team_roles, methods=["GET"]),
        Route("/api/v2/caller-identity", r.caller_identity, methods=["GET"]),
        *oauth.routes(state, r.account),
        *evaluation.routes(state, r.account),
        *webhooks.routes(state),
        Route("/_sandbox/requests", r.sandbox_requests, methods=["GET", "DELETE"]),
        Route("/_sandbox/audit", r.sandbox_audit, methods=["GET"]),
        Route("/_sandbox/faults", r.sandbox_faults, methods=["GET", "POST"]),
        Route("/_sandbox/switches", r.sandbox_switches, methods=["GET", "POST"]),
        Route("/_sandbox/clock", r.sandbox_clock, methods=["POST"]),
        Route("/_sandbox/reset", r.sandbox_reset, methods=["POST"]),
    ]

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def http_error(_request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 500))
        codes = {404: "not_found", 405: "method_not_allowed"}
        body = {
            "code": codes.get(status, "error"),
            "message": str(getattr(exc, "detail", "")) or "Error",
            "id": new_id(),
        }
        return JSONResponse(body, status_code=status)

    return Starlette(
        routes=routes,
        # Outermost: once a request is answered, what it wrote goes to the webhooks.
        middleware=[
            Middleware(webhooks.WebhookMiddleware, delivery=webhooks.WebhookDelivery(state)),
            Middleware(SandboxMiddleware, state=state),
        ],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
    )
