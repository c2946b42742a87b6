"""What the sandbox holds: projects, flags, members, tokens, requests, links, and its switches.

Documents are kept as plain JSON objects in LaunchDarkly's own response shapes, because serving
those shapes faithfully is the sandbox's whole purpose; the logic lives in ``changes``.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.launchdarkly.sandbox.oauth import SandboxOAuth
from commands.demo import (
    DEMO_PROJECT,
    demo_flags,
    demo_members,
    demo_project,
    demo_roles,
    demo_segments,
    demo_teams,
)

JsonDoc = dict[str, Any]


class Faults(BaseModel):
    """Failures to inject, counted over LaunchDarkly API requests (never ``/_sandbox/`` ones).

    "Every Nth" counts requests from the last reset; 0 turns a fault off. ``methods`` limits the
    counted faults (429, error, drop, hang) to those methods; latency applies to every request.
    """

    model_config = ConfigDict(extra="forbid")

    latency: float = Field(default=0.0, ge=0, description="seconds added before each answer")
    rate_limit_every: int = Field(default=0, ge=0, description="every Nth request answers 429")
    retry_after: float | None = Field(
        default=1.0, ge=0, description="Retry-After of a 429 in seconds (None: header omitted)"
    )
    reset_after: float = Field(default=1.0, ge=0, description="X-Ratelimit-Reset = now + this (s)")
    error_every: int = Field(default=0, ge=0, description="every Nth request answers error_status")
    error_status: int = Field(default=503, ge=400, le=599)
    error_message: str = Field(default="", description="the injected error's message (default: says so)")
    drop_every: int = Field(default=0, ge=0, description="every Nth request: connection dropped")
    hang: float = Field(default=0.0, ge=0, description="seconds a matching request sleeps")
    hang_every: int = Field(default=0, ge=0, description="every Nth request hangs (0: none)")
    apply_before_fault: bool = Field(
        default=True, description="drops and hangs happen after the request was handled"
    )
    methods: list[str] = Field(default_factory=list, description="methods the faults apply to")
    paths: list[str] = Field(default_factory=list, description="path prefixes the faults apply to")

    def applies_to(self, method: str, path: str = "") -> bool:
        """Whether the counted faults apply to a request with this method and path."""
        if self.paths and not any(path.startswith(prefix) for prefix in self.paths):
            return False
        return not self.methods or method.upper() in {m.upper() for m in self.methods}


class Switches(BaseModel):
    """Behaviour LaunchDarkly does not document, made explicit so both readings can be tested."""

    model_config = ConfigDict(extra="forbid")

    #: A dry run in an environment that requires approval: answer the preview, or 405.
    dry_run_in_approval_env: Literal["preview", "405"] = "preview"
    #: The 405 message: "action" is the wording seen in practice for JSON patches ("Flag
    #: configuration updates require approval: action 'updateOn' not allowed"); "generic" a
    #: wording without the action.
    approval_405_message: Literal["action", "generic"] = "action"
    #: Fields left out of the answer to a flag PATCH (the change itself is applied): a sparse or
    #: broken answer after LaunchDarkly has accepted a write.
    patch_answer_omits: list[str] = Field(default_factory=list)
    #: Fields left out of the answer that creates an approval request (it is created): only what
    #: LaunchDarkly's spec requires may be relied on.
    approval_answer_omits: list[str] = Field(default_factory=list)
    #: Fields left out of every member document the sandbox answers (a member without email).
    member_answer_omits: list[str] = Field(default_factory=list)


@dataclass
class Account:
    """A member and what their token may do."""

    member: JsonDoc
    token: str
    writer: bool
    oauth: bool = False  # reached through an OAuth access token (caller-identity says so)

    @property
    def member_id(self) -> str:
        return str(self.member["_id"])


@dataclass
class StoredApproval:
    project: str
    flag: str
    env: str
    doc: JsonDoc
    comment: str | None = None


@dataclass
class StoredScheduled:
    project: str
    flag: str
    env: str
    doc: JsonDoc
    comment: str | None = None
    approval_id: str | None = None


@dataclass
class StoredLink:
    project: str
    flag: str
    doc: JsonDoc


@dataclass
class Project:
    doc: JsonDoc  # the project document, without environments
    environments: dict[str, JsonDoc]  # key -> environment document (with approvalSettings)
    flags: dict[str, JsonDoc]  # key -> flag document
    statuses: dict[tuple[str, str], JsonDoc]  # (env, flag) -> {"name", "lastRequested", "default"}
    segments: dict[str, dict[str, JsonDoc]] = field(default_factory=dict)  # env -> key -> segment


def new_id() -> str:
    """A 24-hex id, like LaunchDarkly's object ids."""
    return uuid.uuid4().hex[:24]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SandboxState:
    """Everything the sandbox serves. Build with ``SandboxState.demo()`` or directly in tests."""

    projects: dict[str, Project]
    accounts: list[Account]
    account_id: str = "5f0000000000000000acc0un"
    switches: Switches = field(default_factory=Switches)
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], int] = wall_clock_ms
    approvals: dict[str, StoredApproval] = field(default_factory=dict)
    scheduled: dict[str, StoredScheduled] = field(default_factory=dict)
    links: dict[str, StoredLink] = field(default_factory=dict)
    audit: list[JsonDoc] = field(default_factory=list)
    #: LaunchDarkly's own audit log (``GET /api/v2/auditlog``): one entry per flag change, in the
    #: shape of ``AuditLogEntryRep`` (versions included; the list route leaves them out).
    ld_audit: list[JsonDoc] = field(default_factory=list)
    #: OAuth clients, codes and tokens (``bot.launchdarkly.sandbox.oauth``).
    oauth: SandboxOAuth = field(default_factory=SandboxOAuth)
    #: Custom roles (``GET /api/v2/roles/{key}``) and teams (their ``customRoleKeys``), by key.
    roles: dict[str, JsonDoc] = field(default_factory=dict)
    teams: dict[str, JsonDoc] = field(default_factory=dict)
    #: Webhooks (``bot.launchdarkly.sandbox.webhooks``): id -> document (with its secret), and
    #: each delivery attempted (webhook, entry, status). Only ``admin_token`` may manage them.
    webhooks: dict[str, JsonDoc] = field(default_factory=dict)
    deliveries: list[JsonDoc] = field(default_factory=list)
    admin_token: str = "sandbox-admin"
    requests: list[JsonDoc] = field(default_factory=list)
    request_count: int = 0
    _initial: SandboxState | None = field(default=None, repr=False)

    @classmethod
    def demo(
        cls,
        token: str = "sandbox-alice",
        *,
        bob_token: str = "sandbox-bob",
        reader_token: str = "sandbox-carol",
        switches: Switches | None = None,
        faults: Faults | None = None,
    ) -> SandboxState:
        """The demo account: project ``demo`` (``test``; ``production`` requires approval).

        Args:
            token: alice's token (a writer); ``python -m bot sandbox --token`` sets it.
            bob_token: bob's token (a writer).
            reader_token: carol's token (a reader: 403 on every write).
        """
        raw_project = demo_project()
        environments = {env["key"]: env for env in raw_project.pop("environments")["items"]}
        flags = demo_flags()
        project = Project(
            doc=raw_project,
            environments=environments,
            flags=flags,
            statuses=_demo_statuses(flags, list(environments)),
            segments=demo_segments(),
        )
        tokens = {"alice@example.com": token, "bob@example.com": bob_token, "carol@example.com": reader_token}
        # Only the built-in roles decide what a token may write here (a custom role's member, dave
        # or erin, writes through flagops' service token, which checks their roles first).
        accounts = [
            Account(
                member=_member_doc(m),
                token=tokens.get(m["email"], f"sandbox-{m['email'].split('@')[0]}"),
                writer=m.get("role") in ("writer", "admin", "owner"),
            )
            for m in demo_members()
        ]
        state = cls(
            projects={DEMO_PROJECT: project},
            accounts=accounts,
            roles=demo_roles(),
            teams=demo_teams(),
            switches=switches or Switches(),
            faults=faults or Faults(),
        )
        state.remember_initial()
        return state

    def remember_initial(self) -> None:
        """Take the current data as what ``reset()`` returns to."""
        self._initial = None
        self._initial = copy.deepcopy(self)

    def reset(self) -> None:
        """Back to the initial data: no requests, links, audit entries, faults or request log."""
        if self._initial is None:
            raise RuntimeError("reset() needs remember_initial() first")
        fresh = copy.deepcopy(self._initial)
        kept = (
            "projects",
            "accounts",
            "switches",
            "clock",
            "approvals",
            "scheduled",
            "links",
            "roles",
            "teams",
        )
        for name in (*kept, "audit", "ld_audit", "webhooks", "deliveries"):
            setattr(self, name, getattr(fresh, name))
        self.faults = Faults()
        self.requests = []
        self.request_count = 0

    def account_for(self, token: str | None) -> Account | None:
        """The account an ``Authorization`` value belongs to, or None: a personal token as it is,
        an OAuth access token as ``Bearer <token>`` (its member's, within the granted scope)."""
        if token is not None and token.startswith("Bearer "):
            grant = self.oauth.member_of(token[len("Bearer ") :].strip(), self.clock())
            member = next((a for a in self.accounts if grant and a.member_id == grant.member_id), None)
            if grant is None or member is None:
                return None
            return Account(member.member, token, member.writer and grant.scope != "reader", oauth=True)
        for account in self.accounts:
            if token is not None and account.token == token:
                return account
        return None

    def member_by_id(self, member_id: str) -> JsonDoc | None:
        for account in self.accounts:
            if account.member_id == member_id:
                return account.member
        return None

    def record(self, entry: JsonDoc) -> None:
        """Add an audit entry (who changed what), dated now."""
        self.audit.append({"date": self.clock(), **entry})

    def record_flag_change(
        self,
        *,
        project: str,
        flag_key: str,
        before: JsonDoc | None,
        after: JsonDoc | None,
        member: JsonDoc | None,
        comment: str | None,
        environments: list[str],
        title_verb: str = "updated the flag",
    ) -> JsonDoc:
        """Add an entry to LaunchDarkly's audit log for a change of a flag.

        Dates are strictly increasing (one ms apart at least), so paging by ``before`` never
        skips an entry recorded in the same millisecond.
        """
        last = self.ld_audit[-1]["date"] if self.ld_audit else 0
        date = max(self.clock(), last + 1)
        name = str((after or before or {}).get("name") or flag_key)
        resources = [f"proj/{project}:env/{env}:flag/{flag_key}" for env in environments] or [
            f"proj/{project}:env/*:flag/{flag_key}"
        ]
        entry_id = new_id()
        who = (member or {}).get("email") or "someone"
        entry: JsonDoc = {
            "_id": entry_id,
            "_accountId": self.account_id,
            "_links": {"self": {"href": f"/api/v2/auditlog/{entry_id}", "type": "application/json"}},
            "date": date,
            "accesses": [{"action": "updateFlag", "resource": r} for r in resources],
            "kind": "flag",
            "name": name,
            "description": f"{who} {title_verb} {name}",
            "shortDescription": title_verb,
            "titleVerb": title_verb,
            "title": f"{who} {title_verb} [{name}]",
            "target": {"name": name, "resources": resources},
            "previousVersion": copy.deepcopy(before),
            "currentVersion": copy.deepcopy(after),
        }
        if comment:
            entry["comment"] = comment
        if member is not None:
            entry["member"] = {
                "_id": member.get("_id"),
                "_links": member.get("_links", {}),
                "email": member.get("email"),
                "role": member.get("role"),
                "firstName": member.get("firstName"),
                "lastName": member.get("lastName"),
            }
        self.ld_audit.append(entry)
        return entry


def _member_doc(member: JsonDoc) -> JsonDoc:
    """A demo member in the shape of LaunchDarkly's member response."""
    return {
        "_links": {"self": {"href": f"/api/v2/members/{member['_id']}", "type": "application/json"}},
        "_pendingInvite": False,
        "_verified": True,
        "customRoles": [],
        "mfa": "disabled",
        "_lastSeen": 1763596800000,
        "creationDate": 1735689600000,
        **member,
    }


def _demo_statuses(flags: dict[str, JsonDoc], environments: list[str]) -> dict[tuple[str, str], JsonDoc]:
    """Flag statuses: a fixed, varied picture (one of each status), so listings have something."""
    names = {
        "new-checkout": {"test": "active", "production": "inactive"},
        "banner-color": {"test": "active", "production": "active"},
        "pricing-page": {"test": "active", "production": "active"},
        "express-shipping": {"test": "new", "production": "new"},
        "holiday-banner": {"test": "launched", "production": "launched"},
    }
    statuses: dict[tuple[str, str], JsonDoc] = {}
    for key, flag in flags.items():
        for env in environments:
            name = names.get(key, {}).get(env, "new")
            status: JsonDoc = {"name": name}
            if name != "new":
                status["lastRequested"] = "2025-11-20T09:30:00Z"
                status["default"] = flag["variations"][flag["defaults"]["offVariation"]]["value"]
            statuses[(env, key)] = status
    return statuses
