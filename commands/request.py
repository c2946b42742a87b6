"""Command → the exact LaunchDarkly request it makes (method, path, query, content type, body).

The bot's LaunchDarkly client sends these; ``python -m commands explain`` prints them. Changes are
semantic patches on the flag, or (``--approval``) approval requests, or (a schedule) scheduled
changes; ``show``/``list`` are GETs; the raw escape hatches send their validated bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from commands import intents as it
from commands.errors import CommandError
from commands.resolve import Flag, resolve

SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
JSON = "application/json"


@dataclass(frozen=True)
class PlannedRequest:
    """One HTTP request to LaunchDarkly's REST API (``path`` under the API's base URL)."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    body: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The request as plain JSON-able data."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "content_type": self.content_type,
            "body": self.body,
        }


def _seg(value: str) -> str:
    return quote(value, safe="")


def plan_request(
    cmd: it.Command,
    flag: Flag | None,
    *,
    project: str,
    members: Mapping[str, str] | None = None,
    flags: Mapping[str, Flag] | None = None,
    execution_date: int | None = None,
) -> PlannedRequest:
    """The request a command makes.

    Args:
        cmd: a parsed command.
        flag: the flag document a change resolves against (unused by other commands).
        project: the project key, unless the command names one (``--project``).
        members: email → member id, for maintainers and reviewers given by email.
        flags: other flags by key (prerequisites).
        execution_date: epoch milliseconds, for a scheduled change (the caller turns the
            command's ``at``/``in`` text into a date).

    Returns:
        The planned request.

    Raises:
        CommandError: the command makes no LaunchDarkly request (help, reserved verbs), a change
            has no flag document, or a scheduled change has no execution date.
        ResolveError: a reference in the command matches nothing on the flag.
    """
    match cmd:
        case it.ChangeCommand():
            return _change(cmd, flag, cmd.project or project, members, flags, execution_date)
        case it.ShowCommand():
            query = {"env": cmd.environment} if cmd.environment else {}
            return PlannedRequest(
                "GET", f"/api/v2/flags/{_seg(cmd.project or project)}/{_seg(cmd.flag)}", query
            )
        case it.ListCommand():
            terms = [f"query:{cmd.query}"] if cmd.query else []
            terms += [f"tags:{cmd.tag}"] if cmd.tag else []
            query = {"filter": ",".join(terms)} if terms else {}
            return PlannedRequest("GET", f"/api/v2/flags/{_seg(cmd.project or project)}", query)
        case it.RawCommand():
            return _raw(cmd, cmd.project or project)
        case it.HelpCommand():
            raise CommandError("help makes no LaunchDarkly request")
        case it.ReservedCommand():
            raise CommandError(f"`{cmd.verb}` is carried out by the bot, not by a single request")
    raise AssertionError(f"unknown command {cmd!r}")


def _change(
    cmd: it.ChangeCommand,
    flag: Flag | None,
    project: str,
    members: Mapping[str, str] | None,
    flags: Mapping[str, Flag] | None,
    execution_date: int | None,
) -> PlannedRequest:
    if flag is None:
        raise CommandError(f"no flag document for {cmd.flag}: it is needed to resolve the change")
    patch = resolve(cmd, flag, members=members, flags=flags)
    flag_path = f"/api/v2/flags/{_seg(project)}/{_seg(cmd.flag)}"
    if cmd.schedule is not None and execution_date is None:
        raise CommandError(
            f"the change is scheduled ({cmd.schedule.kind} {cmd.schedule.text}): it needs its execution date"
        )
    if not cmd.approval and cmd.schedule is None:
        return PlannedRequest("PATCH", flag_path, {}, SEMANTIC_PATCH, patch.body())
    if patch.environmentKey is None:
        raise CommandError("approvals and schedules are per environment: name one with --env")
    env_path = (
        f"/api/v2/projects/{_seg(project)}/flags/{_seg(cmd.flag)}/environments/{_seg(patch.environmentKey)}"
    )
    instructions = patch.body()["instructions"]
    body: dict[str, Any]
    if cmd.approval:
        body = {
            "description": cmd.comment or f"{cmd.flag}: {', '.join(cmd.kinds)}",
            "instructions": instructions,
        }
        if cmd.comment is not None:
            body["comment"] = cmd.comment
        notify = [members[r] for r in cmd.reviewers if members and r in members]
        notify += [r for r in cmd.reviewers if "@" not in r and not r.startswith("<")]
        if notify:
            body["notifyMemberIds"] = notify
        if execution_date is not None:
            body["executionDate"] = execution_date
        return PlannedRequest("POST", f"{env_path}/approval-requests", {}, JSON, body)
    body = {"executionDate": execution_date, "instructions": instructions}
    if cmd.comment is not None:
        body["comment"] = cmd.comment
    return PlannedRequest("POST", f"{env_path}/scheduled-changes", {}, JSON, body)


def _raw(cmd: it.RawCommand, project: str) -> PlannedRequest:
    if cmd.shape == "project-patch":
        return PlannedRequest("PATCH", f"/api/v2/projects/{_seg(project)}", {}, JSON, cmd.body)
    flag = _seg(cmd.flag or "")
    if cmd.shape == "link-patch":
        path = f"/api/v2/flag-links/projects/{_seg(project)}/flags/{flag}/{_seg(cmd.link_id or '')}"
        return PlannedRequest("PATCH", path, {}, JSON, cmd.body)
    content_type = SEMANTIC_PATCH if cmd.shape == "semantic" else JSON
    return PlannedRequest("PATCH", f"/api/v2/flags/{_seg(project)}/{flag}", {}, content_type, cmd.body)


def validation_problems(exc: ValidationError) -> list[str]:
    """One plain line per problem of a pydantic validation error.

    ``("instructions", 0, "addTargets", "variationId")`` reads as
    ``instructions[0] (addTargets): variationId is required``.
    """
    lines: list[str] = []
    for error in exc.errors():
        where = ""
        for part in error["loc"]:
            if isinstance(part, int):
                where += f"[{part}]"
            elif part in ("function-after", "function-before") or str(part).startswith("function-"):
                continue
            elif where.endswith("]") and part[:1].islower() and "instructions" in where and "(" not in where:
                where += f" ({part})"
            else:
                where += f".{part}" if where else str(part)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        elif error["type"] == "union_tag_invalid":
            message = (
                f"unknown instruction kind {error.get('input', {}).get('kind')!r}"
                if isinstance(error.get("input"), dict)
                else message
            )
        lines.append(f"{where or 'body'}: {message}")
    return lines
