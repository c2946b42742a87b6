"""The guardrails policy: who may propose and who may apply which changes, from a TOML file.

``FLAGOPS_POLICY`` names the file (``policy.example.toml`` at the repository root documents every
key). Without one the bot allows everything, says so in its log at start and in ``/flag help``,
and keeps the core loop's rule (only the requester presses Apply).

The file is made of sections, most specific first::

    [projects.<project>.environments.<env>]   one environment of one project
    [projects.<project>]                      flag-level changes, and environments not listed
    [default]                                 every project

Each key (``propose``, ``apply``, ``read_only``, ``second_person``) comes from the most specific
section that sets it; a key set nowhere allows everything. ``propose`` / ``apply`` are
``{ users = [...], groups = [...], channels = [...] }``: a person passes when they are one of the
``users`` or in one of the Slack user ``groups`` (either list empty or absent: anyone), and the
command or click happens in one of the ``channels`` (empty or absent: any channel).

Checked when a card is proposed and again when Apply is pressed, against the file as it is then
(it is re-read when it changes) and the user groups' membership then (``usergroups.users.list``,
scope ``usergroups:read``): a refusal names the rule, e.g.
``projects.demo.environments.production.apply``.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import ConfigError
from bot.errors import error_text
from bot.lifecycle.models import Draft, Who, proposal_of
from bot.persistence.store import Change
from bot.slack.messenger import Messenger, SlackFailure
from commands.errors import CommandError
from commands.instructions import INSTRUCTION_MODELS

log = logging.getLogger("flagops.policy")

DEFAULT_SECOND_PERSON = ("deleteFlag", "archiveFlag")
OPEN_NOTICE = (
    "No policy file (FLAGOPS_POLICY is not set): anyone who can type /flag may propose and apply "
    "any change the bot's LaunchDarkly token allows."
)

#: ``group id -> member ids``, asked each time (membership can change between propose and apply).
GroupMembers = Callable[[str], Awaitable[Sequence[str]]]


class PolicyRefusal(CommandError):
    """The policy does not allow this; ``message`` names the rule that refused (mrkdwn: the
    people and channels are mentions built from the policy's ids)."""

    is_mrkdwn = True


class GroupLookupError(Exception):
    """A Slack user group's members could not be read (``message`` says why, e.g. missing_scope)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Allowed:
    """Who passes one ``propose`` or ``apply`` rule."""

    users: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()
    channels: frozenset[str] = frozenset()

    @property
    def anyone(self) -> bool:
        return not self.users and not self.groups

    def describe(self) -> str:
        """The rule in Slack mrkdwn: ``<@U1>, <!subteam^S1> in <#C1>``."""
        people = [f"<@{u}>" for u in sorted(self.users)] + [f"<!subteam^{g}>" for g in self.groups]
        text = ", ".join(people) if people else "anyone"
        if self.channels:
            text += " in " + ", ".join(f"<#{c}>" for c in sorted(self.channels))
        return text


@dataclass(frozen=True)
class Rule:
    """One setting and the section it came from (``name`` is what a refusal quotes)."""

    name: str
    allowed: Allowed


@dataclass(frozen=True)
class Section:
    """One section of the file, as written (None: the key is not set here)."""

    name: str
    propose: Allowed | None = None
    apply: Allowed | None = None
    read_only: bool | None = None
    second_person: frozenset[str] | None = None


@dataclass(frozen=True)
class Scope:
    """The effective rules for one project and environment (None: flag-level change)."""

    project: str
    environment: str | None
    propose: Rule | None
    apply: Rule | None
    read_only: str | None
    """The name of the rule making this scope read-only, or None."""
    second_person: frozenset[str]
    second_person_rule: str


@dataclass
class Policy:
    """The parsed policy file: sections by name (``default``, ``projects.demo``...)."""

    path: Path | None
    sections: dict[str, Section] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        """No file: everything allowed, the core loop's requester-only rule."""
        return self.path is None

    def scope(self, project: str, environment: str | None) -> Scope:
        """The rules for ``project`` / ``environment``, each from the most specific section."""
        names = [f"projects.{project}", "default"]
        if environment:
            names.insert(0, f"projects.{project}.environments.{environment}")
        chain = [self.sections[n] for n in names if n in self.sections]

        def first(attr: str) -> tuple[str, Any] | None:
            for section in chain:
                value = getattr(section, attr)
                if value is not None:
                    return section.name, value
            return None

        propose, apply, read_only, second = (
            first("propose"),
            first("apply"),
            first("read_only"),
            first("second_person"),
        )
        return Scope(
            project=project,
            environment=environment,
            propose=Rule(f"{propose[0]}.propose", propose[1]) if propose else None,
            apply=Rule(f"{apply[0]}.apply", apply[1]) if apply else None,
            read_only=f"{read_only[0]}.read_only" if read_only and read_only[1] else None,
            second_person=second[1] if second else frozenset(DEFAULT_SECOND_PERSON),
            second_person_rule=f"{second[0]}.second_person" if second else "second_person (default)",
        )


def load_policy(path: str | Path | None) -> Policy:
    """Read and check a policy file.

    Args:
        path: the file (``FLAGOPS_POLICY``), or None/empty for the open policy.

    Returns:
        The policy.

    Raises:
        ConfigError: the file is missing, not TOML, or has an unknown key, kind or bad value; the
            message names the file and the key.
    """
    if path is None or not str(path).strip():
        return Policy(None)
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"FLAGOPS_POLICY: there is no file {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"FLAGOPS_POLICY: cannot read {file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"FLAGOPS_POLICY: {file} is not valid TOML: {exc}") from None
    policy = Policy(file)
    unknown = set(data) - {"default", "projects"}
    if unknown:
        raise ConfigError(f"FLAGOPS_POLICY {file}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    if "default" in data:
        policy.sections["default"] = _section(file, "default", data["default"], allow_children=False)
    projects = data.get("projects", {})
    if not isinstance(projects, dict):
        raise ConfigError(f"FLAGOPS_POLICY {file}: `projects` must be a table of projects")
    for project, body in projects.items():
        name = f"projects.{project}"
        policy.sections[name] = _section(file, name, body, allow_children=True)
        envs = body.get("environments", {})
        if not isinstance(envs, dict):
            raise ConfigError(f"FLAGOPS_POLICY {file}: `{name}.environments` must be a table")
        for env, env_body in envs.items():
            env_name = f"{name}.environments.{env}"
            policy.sections[env_name] = _section(file, env_name, env_body, allow_children=False)
    return policy


_SECTION_KEYS = {"propose", "apply", "read_only", "second_person"}
_ALLOWED_KEYS = {"users", "groups", "channels"}


def _section(file: Path, name: str, body: object, *, allow_children: bool) -> Section:
    where = f"FLAGOPS_POLICY {file}: `{name}`"
    if not isinstance(body, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(body) - _SECTION_KEYS - ({"environments"} if allow_children else set())
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}")
    read_only = body.get("read_only")
    if read_only is not None and not isinstance(read_only, bool):
        raise ConfigError(f"{where}.read_only must be true or false")
    second = body.get("second_person")
    kinds: frozenset[str] | None = None
    if second is not None:
        kinds = frozenset(_strings(f"{where}.second_person", second))
        bad = sorted(kinds - set(INSTRUCTION_MODELS))
        if bad:
            raise ConfigError(f"{where}.second_person: unknown instruction kind(s) {', '.join(bad)}")
    return Section(
        name,
        propose=_allowed(f"{where}.propose", body["propose"]) if "propose" in body else None,
        apply=_allowed(f"{where}.apply", body["apply"]) if "apply" in body else None,
        read_only=read_only,
        second_person=kinds,
    )


def _allowed(where: str, body: object) -> Allowed:
    if not isinstance(body, dict):
        raise ConfigError(f'{where} must be a table like {{ users = ["U123"], groups = ["S123"] }}')
    unknown = set(body) - _ALLOWED_KEYS
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}")
    return Allowed(
        users=frozenset(_strings(f"{where}.users", body.get("users", []))),
        groups=tuple(_strings(f"{where}.groups", body.get("groups", []))),
        channels=frozenset(_strings(f"{where}.channels", body.get("channels", []))),
    )


def _strings(where: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return [v.strip() for v in value]


class PolicyGuard:
    """The ``ChangeService.guard``: checks a proposal and an Apply click against the policy.

    Args:
        path: the policy file, or None for the open policy.
        group_members: reads a Slack user group's members (``usergroups.users.list``).
    """

    def __init__(self, path: str | Path | None, group_members: GroupMembers) -> None:
        self._path = Path(path) if path else None
        self._group_members = group_members
        self._policy = load_policy(self._path)
        self._mtime = self._stat()

    @property
    def policy(self) -> Policy:
        """The policy as the file says now (re-read when the file changed since the last look).

        Raises:
            ConfigError: the changed file is invalid; the last valid policy is not used, so an
                edit that breaks the file refuses changes instead of silently loosening them.
        """
        mtime = self._stat()
        if mtime != self._mtime:
            self._policy = load_policy(self._path)
            self._mtime = mtime
            log.info("policy reloaded from %s", self._path)
        return self._policy

    def _current(self) -> Policy:
        """:attr:`policy`, refusing every change while the file is broken (fail closed).

        Raises:
            PolicyRefusal: the file was changed and is now invalid; says what is wrong.
        """
        try:
            return self.policy
        except ConfigError as exc:
            log.error("the policy file is invalid; every change is refused until it is fixed: %s", exc)
            raise PolicyRefusal(
                f":no_entry: The policy file is invalid, so every change is refused until an admin fixes "
                f"it ({error_text(exc)}). Nothing was changed."
            ) from exc

    def _stat(self) -> int | None:
        if self._path is None:
            return None
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return None

    def startup_message(self) -> str:
        """The log line at start: which file rules, or that everything is allowed."""
        if self._policy.open:
            return OPEN_NOTICE
        return f"Policy from {self._path}: {len(self._policy.sections)} section(s)."

    def help_line(self) -> str:
        """The line ``/flag help`` adds about the policy."""
        if self._policy.open:
            return (
                ":unlock: No policy file: anyone here may propose and apply any change "
                "(set FLAGOPS_POLICY to restrict who may change what)."
            )
        return (
            ":shield: A policy decides who may propose and apply changes per project and environment; "
            "deleting and archiving need a second person to apply."
        )

    # --- the checks ChangeService calls -------------------------------------------------------

    async def check_propose(self, who: Who, draft: Draft, flag: dict[str, Any]) -> list[str]:
        """Whether ``who`` may propose ``draft`` here; the lines the card shows about the policy.

        Raises:
            PolicyRefusal: not allowed (read-only environment, not in ``propose``); names the rule.
            ConfigError: the policy file became invalid.
        """
        policy = self._current()
        if policy.open:
            return []
        # A JSON or merge patch may change several environments and flag-level fields at once:
        # each is checked as the change it is there (a project patch, as a project-level change).
        on_project = draft.raw is not None and draft.raw.on_project
        lines: list[str] = []
        for environment in draft.scopes():
            scope = policy.scope(draft.project, environment)
            where = _where(draft.project, environment, on_project=on_project)
            if scope.read_only:
                raise PolicyRefusal(
                    f":lock: {where} is read-only from Slack (policy rule `{scope.read_only}`). "
                    "Nothing was changed."
                )
            await self._require(who.user_id, who.reply.channel_id, scope.propose, "propose changes to", where)
            lines += [line for line in _card_lines(scope, draft.kinds()) if line not in lines]
        return lines

    async def check_apply(self, who: Who, change: Change) -> str | None:
        """Whether ``who`` may press Apply on ``change`` now: None, or the refusal to show them.

        * Kinds that need a second person (``deleteFlag``, ``archiveFlag`` by default): never the
          requester; anyone else the ``apply`` rule allows.
        * Other changes: the requester, when the ``apply`` rule allows them; when the rule names
          who may apply, those people may also apply anyone's change (developers propose,
          release managers apply). Without such a rule, only the requester (the core loop's rule).
        """
        try:
            policy = self._current()
        except PolicyRefusal as refusal:
            return refusal.message
        if policy.open:
            return None if who.user_id == change.requester_id else _only(change)
        proposal = proposal_of(change)
        if proposal.raw is not None:
            scopes = proposal.raw.scopes()
        else:
            scoped = proposal.semantic_patch().environment_scoped
            scopes = [change.environment if scoped else None]
        on_project = proposal.raw is not None and proposal.raw.on_project
        kinds = proposal.kinds()
        for environment in scopes:
            refused = await self._apply_refusal(who, change, policy, environment, kinds, on_project)
            if refused is not None:
                return refused
        return None

    async def _apply_refusal(
        self,
        who: Who,
        change: Change,
        policy: Policy,
        environment: str | None,
        change_kinds: set[str],
        on_project: bool,
    ) -> str | None:
        """:meth:`check_apply` for one environment (None: flag-level) the change touches."""
        scope = policy.scope(change.project, environment)
        where = _where(change.project, environment, on_project=on_project)
        if scope.read_only:
            return (
                f":lock: {where} is read-only from Slack now (policy rule `{scope.read_only}`). "
                "Nothing was changed."
            )
        kinds = sorted(change_kinds & scope.second_person)
        if kinds and who.user_id == change.requester_id:
            return (
                f":busts_in_silhouette: `{', '.join(kinds)}` needs a second person (policy rule "
                f"`{scope.second_person_rule}`): someone other than <@{change.requester_id}> who may "
                "apply here must press Apply. Nothing was changed."
            )
        named = scope.apply is not None and not scope.apply.allowed.anyone
        if not kinds and who.user_id != change.requester_id and not named:
            return _only(change)
        try:
            await self._require(who.user_id, change.channel_id, scope.apply, "apply changes to", where)
        except PolicyRefusal as refusal:
            return refusal.message
        return None

    async def _require(self, user: str, channel: str, rule: Rule | None, what: str, where: str) -> None:
        if rule is None:
            return
        allowed = rule.allowed
        if allowed.channels and channel not in allowed.channels:
            raise PolicyRefusal(
                f":no_entry: {where} changes may only be made from "
                f"{', '.join(f'<#{c}>' for c in sorted(allowed.channels))} (policy rule `{rule.name}`). "
                "Nothing was changed."
            )
        if allowed.anyone or user in allowed.users or await self._in_groups(user, allowed.groups, rule):
            return
        raise PolicyRefusal(
            f":no_entry: <@{user}> may not {what} {where} (policy rule `{rule.name}`: "
            f"{allowed.describe()}). Nothing was changed."
        )

    async def _in_groups(self, user: str, groups: Iterable[str], rule: Rule) -> bool:
        for group in groups:
            try:
                members = await self._group_members(group)
            except GroupLookupError as exc:
                # Fail closed: a group we cannot read grants nothing, and the user learns why.
                raise PolicyRefusal(
                    f":warning: Could not check membership of <!subteam^{group}> for policy rule "
                    f"`{rule.name}`: {error_text(exc)}. Nothing was changed."
                ) from exc
            if user in members:
                return True
        return False


def _only(change: Change) -> str:
    return f":no_entry: Only <@{change.requester_id}> can apply this change."


def _where(project: str, environment: str | None, *, on_project: bool = False) -> str:
    if on_project:
        return f"the settings of project *{project}*"
    return (
        f"*{environment}* in project *{project}*" if environment else f"flag settings in project *{project}*"
    )


def _card_lines(scope: Scope, kinds: Sequence[str]) -> list[str]:
    """What the card says about the policy: who may apply, and whether a second person must."""
    lines: list[str] = []
    second = sorted(set(kinds) & scope.second_person)
    if scope.apply is not None and not scope.apply.allowed.anyone:
        lines.append(f":shield: Apply: {scope.apply.allowed.describe()} (`{scope.apply.name}`)")
    if second:
        lines.append(
            f":busts_in_silhouette: `{', '.join(second)}` needs a second person: the requester may not "
            f"apply it (`{scope.second_person_rule}`)"
        )
    return lines


def slack_group_members(slack: Messenger) -> GroupMembers:
    """Read a user group's members with ``usergroups.users.list`` (scope ``usergroups:read``).

    Args:
        slack: the bot's door to Slack's Web API.

    Returns:
        ``group id -> member ids``, raising :class:`GroupLookupError` with Slack's reason.
    """

    async def members(group_id: str) -> Sequence[str]:
        try:
            return await slack.group_members(group_id)
        except SlackFailure as exc:
            raise GroupLookupError(f"Slack said `{exc.reason}`") from exc

    return members
