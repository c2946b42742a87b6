"""Whoever acts through the bot's service token acts within their own LaunchDarkly roles.

A Slack user who has not connected (or linked) their LaunchDarkly account acts through
``LD_API_TOKEN``, which may do more than they may. So before anything is sent through it, at
propose and again at Apply (and for approval requests, reviews and applies), the Slack user is
found in LaunchDarkly and their roles are asked:

    users.info (profile.email, scope users:read.email)
      → GET /api/v2/members?filter=email:<email>&expand=customRoles,roleAttributes
      → the built-in role, each custom role (GET /api/v2/roles/{key}), each team's roles (the
        member's teams' customRoleKeys, else GET /api/v2/teams/{key}/roles)
      → commands.roles.decide for every action commands.permissions says the change needs

A connected or linked person is not checked here: LaunchDarkly checks their own token. Slack users
with no member are refused (``FLAGOPS_UNMAPPED_USERS=refuse``, the default) or act with the token's
rights (``service-token``). Membership and roles are remembered ``FLAGOPS_ROLE_CACHE`` seconds
(60). Whatever cannot be read (Slack's email, the member, a role) refuses: never the token's rights
by accident.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.identity.accounts import AccountService
from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.models import Member
from bot.lifecycle.flags import FlagReader, SingleFlight
from bot.lifecycle.models import Draft, Proposal, RoleRefused, Who, proposal_of
from bot.persistence.store import Change
from bot.slack import blocks
from bot.slack.messenger import Messenger, SlackFailure
from commands.errors import CommandError
from commands.permissions import (
    CREATE_APPROVAL_REQUEST,
    UPDATE_SCHEDULED_CHANGES,
    Need,
    approval_need,
    flag_patch_needs,
    instruction_needs,
    project_patch_needs,
)
from commands.roles import RoleGrant, Target, built_in, decide

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Person:
    """A Slack user as LaunchDarkly knows them: the member (None: no member has their email) and
    every role they hold; or why they could not be looked up."""

    member: Member | None
    grants: tuple[RoleGrant, ...] = ()
    unreadable: str | None = None

    def roles_text(self) -> str:
        return ", ".join(g.name for g in self.grants) or "none"


class RoleRefusal(CommandError):
    """A change refused at propose by the person's LaunchDarkly roles."""


class RoleGuard:
    """The role check (``bot.lifecycle.models.RoleCheck``), built once in ``bot.wiring``."""

    def __init__(
        self,
        *,
        settings: Settings,
        ld: LaunchDarklyClient,
        messenger: Messenger,
        accounts: AccountService,
        clock: Any = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ld = ld
        self.messenger = messenger
        self.accounts = accounts
        self.flags = FlagReader(ld, settings)
        self.clock = clock
        self._people: dict[str, tuple[float, Person]] = {}
        self._lookups: SingleFlight[str, Person] = SingleFlight()

    # --- the checks -------------------------------------------------------------------------------

    async def check_propose(self, who: Who, draft: Draft, flag: dict[str, Any]) -> RoleRefused | None:
        """What proposing ``draft`` will need at Apply (or, where approval is required, to ask
        for it), refused now rather than after a card is posted."""
        needs = await self._draft_needs(draft, flag)
        return await self._refusal(who, needs, flag if draft.flag_key else None)

    async def check_apply(self, who: Who, change: Change) -> RoleRefused | None:
        """What pressing Apply on ``change`` sends through the service token."""
        proposal = proposal_of(change)
        needs = _proposal_needs(change, proposal)
        on_project = proposal.raw is not None and proposal.raw.on_project
        return await self._refusal(who, needs, None, read_flag=bool(change.flag_key) and not on_project)

    async def check_action(
        self, who: Who, action: str, project: str, flag: str, environment: str
    ) -> RoleRefused | None:
        """An approval or scheduled-change action (``reviewApprovalRequest``...)."""
        return await self._refusal(
            who, [approval_need(action, project, flag, environment)], None, read_flag=True
        )

    async def answer(self, who: Who, refusal: str) -> None:
        """The refusal, with **Connect LaunchDarkly** where OAuth is configured."""
        if self.accounts.oauth is not None:
            await self.accounts.connect_prompt(
                who.user_id,
                who.team_id,
                who.reply,
                f"{refusal}\nConnect your LaunchDarkly account to act as yourself, within your own role.",
            )
            return
        message, body = blocks.render_notice(refusal)
        await self.messenger.ephemeral(who.reply, message, body)

    async def offer_connect(self, who: Who) -> None:
        """After a refusal at propose: **Connect LaunchDarkly**, where OAuth is configured."""
        if self.accounts.oauth is not None:
            await self.accounts.connect_prompt(
                who.user_id,
                who.team_id,
                who.reply,
                ":link: Connect your LaunchDarkly account to act as yourself, within your own role.",
            )

    # --- what a change needs ------------------------------------------------------------------------

    async def _draft_needs(self, draft: Draft, flag: dict[str, Any]) -> list[Need]:
        raw = draft.raw
        if raw is not None and raw.on_project:
            return project_patch_needs(draft.project, list(raw.fields))
        env = draft.environment
        scoped = env is not None and (
            (raw is not None and bool(raw.environments))
            or (draft.patch is not None and draft.patch.environment_scoped)
        )
        if (
            scoped
            and env is not None
            and (draft.approval or await self.flags.requires_approval(draft.project, env, flag))
        ):
            # An approval environment: the requester asks; the reviewer who applies needs the rest.
            return [approval_need(CREATE_APPROVAL_REQUEST, draft.project, draft.flag_key, env)]
        if raw is not None:
            needs = flag_patch_needs(
                draft.project, draft.flag_key, list(raw.environments), list(raw.fields), list(raw.kinds)
            )
        else:
            needs = instruction_needs(draft.project, draft.flag_key, env, draft.kinds())
        if draft.when is not None and env is not None:
            needs.append(approval_need(UPDATE_SCHEDULED_CHANGES, draft.project, draft.flag_key, env))
        return needs

    # --- the decision ---------------------------------------------------------------------------------

    async def _refusal(
        self, who: Who, needs: list[Need], flag: dict[str, Any] | None, *, read_flag: bool = False
    ) -> RoleRefused | None:
        """None, or why not. ``read_flag``: read the flag (for its tags) if a role filters on them."""
        if not needs:
            return None
        acting = await self.accounts.acting(who.user_id)
        if acting.linked:
            return None  # their own token: LaunchDarkly applies their roles itself
        person = await self.person(who.user_id)
        if person.unreadable is not None:
            return RoleRefused(
                f":no_entry: I could not check your LaunchDarkly roles ({person.unreadable}), so nothing "
                "is sent through the bot's token. Nothing was changed."
            )
        if person.member is None:
            if self.settings.flagops_unmapped_users == "service-token":
                return None
            return RoleRefused(
                ":no_entry: Your Slack account's email is not a LaunchDarkly member's, so I will not act "
                "for you with the bot's token. Nothing was changed."
                + (
                    ""
                    if self.accounts.oauth
                    else f" `{self.settings.flagops_command} link-account` links yours."
                )
            )
        if flag is None and read_flag and needs[0].flag is not None and _filters_flag_tags(person.grants):
            try:
                flag = await self.flags.flag(needs[0].project, needs[0].flag)
            except (CommandError, ld_errors.LaunchDarklyError):
                flag = None  # gone or unreadable: a tag filter then cannot allow
        missing = []
        for need in needs:
            target = await self._target(need, flag)
            if not decide(person.grants, need.action, target).allowed:
                missing.append(need)
        if not missing:
            return None
        said = "; ".join(f"`{n.action}` {blocks.escape(n.describe())}" for n in missing)
        log.info(
            "role check refused %s: %s", who.user_id, ", ".join(f"{n.action} {n.resource}" for n in missing)
        )
        return RoleRefused(
            f":no_entry: Your LaunchDarkly roles do not allow {said} (your roles: "
            f"{blocks.escape(person.roles_text())}). Nothing was changed."
        )

    async def _target(self, need: Need, flag: dict[str, Any] | None) -> Target:
        env: dict[str, Any] = {}
        if need.environment is not None:
            try:
                env = await self.flags.environment(need.project, need.environment)
            except ld_errors.LaunchDarklyError:
                env = {}
        flag_tags = frozenset(str(t) for t in (flag or {}).get("tags") or []) if flag is not None else None
        return Target(
            project=need.project,
            environment=need.environment,
            flag=need.flag,
            environment_tags=frozenset(str(t) for t in env.get("tags") or []) if env else None,
            environment_properties={"critical": bool(env.get("critical"))} if env else None,
            flag_tags=flag_tags,
        )

    # --- who the person is ---------------------------------------------------------------------------

    async def person(self, user_id: str) -> Person:
        """The Slack user's member and roles (remembered ``FLAGOPS_ROLE_CACHE`` seconds; a lookup
        that failed is not remembered)."""
        now = self.clock()
        cached = self._people.get(user_id)
        if cached is not None and now - cached[0] < self.settings.flagops_role_cache:
            return cached[1]

        async def look_up() -> Person:
            found = await self._look_up(user_id)
            if found.unreadable is None:
                if len(self._people) >= 1024:
                    self._people.pop(next(iter(self._people)))
                self._people[user_id] = (now, found)
            return found

        # A burst of one person's commands after the cache expired looks them up once.
        return await self._lookups.run(user_id, look_up)

    async def _look_up(self, user_id: str) -> Person:
        try:
            profile = (await self.messenger.user(user_id)).get("profile") or {}
        except SlackFailure as failure:
            return Person(None, unreadable=f"Slack did not say your email: {failure.reason}")
        email = str(profile.get("email") or "").strip()
        if not email:
            return Person(None)
        try:
            member = await self.ld.find_member_with_roles(email)
            if member is None:
                return Person(None)
            grants = [built_in(member.role or "no_access")]
            attributes = member.role_attributes or {}
            for key in member.custom_roles:
                role = await self.ld.get_custom_role(key)
                grants.append(RoleGrant(f"custom role {role.key}", tuple(role.policy), attributes))
            for team in member.teams:
                keys = team.custom_role_keys
                if keys is None:
                    keys = await self.ld.team_role_keys(team.key)
                for key in keys:
                    role = await self.ld.get_custom_role(key)
                    # A team's role attributes are the team's, not read here: its statements that
                    # use one never allow (and always deny), as commands.roles decides.
                    grants.append(RoleGrant(f"team {team.key}: {role.key}", tuple(role.policy)))
        except ld_errors.LaunchDarklyError as error:
            return Person(None, unreadable=f"LaunchDarkly answered {error.status} reading them")
        return Person(member, tuple(grants))


def _filters_flag_tags(grants: tuple[RoleGrant, ...]) -> bool:
    """Whether any statement filters flags by tag (only then is the flag read at Apply)."""
    for grant in grants:
        for statement in grant.statements:
            for specifier in [*(statement.resources or []), *(statement.notResources or [])]:
                if ";" in specifier.rpartition(":flag/")[2] and ":flag/" in specifier:
                    return True
    return False


def _proposal_needs(change: Change, proposal: Proposal) -> list[Need]:
    raw = proposal.raw
    if raw is not None and raw.on_project:
        return project_patch_needs(change.project, list(raw.fields))
    if raw is not None:
        needs = flag_patch_needs(
            change.project, change.flag_key, list(raw.environments), list(raw.fields), list(raw.kinds)
        )
    else:
        needs = instruction_needs(
            change.project, change.flag_key, change.environment, sorted(proposal.kinds())
        )
    if proposal.execute_at_ms is not None and change.environment is not None:
        needs.append(
            approval_need(UPDATE_SCHEDULED_CHANGES, change.project, change.flag_key, change.environment)
        )
    return needs
