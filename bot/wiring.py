"""Build everything once, in order, and pass it in: the one place the bot's services are made.

::

    Messenger ─┬─ PolicyGuard (Slack user groups)
               ├─ AccountService (who acts as whom)
               ├─ RoleGuard (LaunchDarkly's roles of whoever acts through the service token)
    ChannelConfig, JobStore
    ChangeService(guard, channel defaults, verbs, approvals=ApprovalService built on it)

Every service gets what it uses in its constructor; nothing is set on a service after it is
built. The lifecycle and the approvals feature call each other (Apply may become Request
approval; an approval applied finishes its change card), so the lifecycle builds its approval flow
on itself from the factory given here. The verb registry starts empty and is filled as the Slack
features register their verbs (``bot.slack.router.CommandRouter.handle``): the lifecycle reads it
to make a superseded ``undo`` card again.

Used by the web process (``bot.slack.server.Runtime``), the inbox workers (``python -m bot
worker``) and the clock (``python -m bot clock``), so all run the same rules. The inbox's handlers
are registered by the Slack features like the verbs (``Inbox.handle``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.approvals.cards import ApprovalCardStore
from bot.approvals.service import ApprovalService
from bot.config import Settings
from bot.guardrails.channel_config import ChannelConfig
from bot.guardrails.policy import PolicyGuard, slack_group_members
from bot.identity.accounts import AccountService, AccountStore
from bot.identity.roles import RoleGuard
from bot.inbox.service import Inbox
from bot.inbox.store import InboxStore
from bot.launchdarkly.client import LaunchDarklyClient
from bot.lifecycle.models import VerbHandler
from bot.lifecycle.service import ChangeService
from bot.persistence.store import Store
from bot.scheduling.jobs import JobStore
from bot.slack.messenger import Messenger
from bot.subscriptions.service import SubscriptionService
from bot.subscriptions.store import SubscriptionStore
from bot.subscriptions.webhook import WebhookSecrets

log = logging.getLogger("flagops.wiring")


@dataclass(frozen=True)
class Services:
    """The bot's services, built once per process and shared by every listener and job."""

    settings: Settings
    store: Store
    ld: LaunchDarklyClient
    messenger: Messenger
    channels: ChannelConfig  # each channel's settings (`/flag config`)
    jobs: JobStore  # what is due: reminders, digests, checks
    guard: PolicyGuard  # the policy file's rules on every change
    accounts: AccountService  # linked LaunchDarkly accounts: who acts as whom
    changes: ChangeService  # the change lifecycle
    approvals: ApprovalService  # approval requests and their cards
    verbs: dict[str, VerbHandler]  # reserved verbs' handlers, filled as features register
    subscriptions: SubscriptionService  # channels told of flag changes made anywhere
    inbox: Inbox  # accepted commands and clicks, written before the ack, worked from the database


def open_ld(settings: Settings) -> LaunchDarklyClient:
    """The process's LaunchDarkly client (one connection pool), as the settings say."""
    return LaunchDarklyClient(
        settings.ld_base_url,
        settings.ld_api_token,
        timeout=settings.ld_timeout,
        max_rate_limit_wait=settings.ld_max_rate_limit_wait,
    )


def build_services(
    settings: Settings, *, store: Store, ld: LaunchDarklyClient, messenger: Messenger
) -> Services:
    """Build every service on the process's store and clients.

    Raises:
        ConfigError: ``FLAGOPS_POLICY`` names a missing or invalid file (the bot does not start
            with a policy it cannot read: that would silently allow everything).
    """
    guard = PolicyGuard(settings.flagops_policy, slack_group_members(messenger))
    if guard.policy.open:
        log.warning(guard.startup_message())
    else:
        log.info(guard.startup_message())
    channels = ChannelConfig(store.engine, settings)
    accounts = AccountService(
        settings=settings,
        store=AccountStore(store.engine, settings.flagops_secret_key),
        ld=ld,
        messenger=messenger,
    )
    # Whoever acts through the service token acts within their own LaunchDarkly roles.
    roles = RoleGuard(settings=settings, ld=ld, messenger=messenger, accounts=accounts)
    verbs: dict[str, VerbHandler] = {}
    jobs = JobStore(store.engine)
    built: list[ApprovalService] = []

    def approvals_on(changes: ChangeService) -> ApprovalService:
        service = ApprovalService(
            changes=changes, accounts=accounts, cards=ApprovalCardStore(store.engine), channel_config=channels
        )
        built.append(service)
        return service

    changes = ChangeService(
        settings=settings,
        store=store,
        ld=ld,
        messenger=messenger,
        guard=guard,
        roles=roles,
        channel_defaults=channels,
        approvals=approvals_on,
        verbs=verbs,
        jobs=jobs,
    )
    subscription_store = SubscriptionStore(store.engine)
    subscriptions = SubscriptionService(
        settings=settings,
        store=subscription_store,
        changes=changes,
        channels=channels,
        secrets=WebhookSecrets(subscription_store, settings.flagops_secret_key),
    )
    return Services(
        settings=settings,
        store=store,
        ld=ld,
        messenger=messenger,
        channels=channels,
        jobs=jobs,
        guard=guard,
        accounts=accounts,
        changes=changes,
        approvals=built[0],
        subscriptions=subscriptions,
        verbs=verbs,
        inbox=Inbox(settings=settings, store=InboxStore(store.engine), messenger=messenger),
    )
