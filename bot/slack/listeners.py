"""Bolt listeners: verify (Bolt's middleware), write to the inbox, ack, hand over.

Each listener is a few lines. Commands and clicks are written to the durable inbox
(``bot.inbox``: one INSERT) before ``ack()``, and nothing else happens before it: nothing talks
to LaunchDarkly, and the database only for that INSERT. With ``process_before_response=True`` Bolt
answers Slack's HTTP request when the listener returns, so every listener returns right after its
``ack``: the row is then worked (in a task the listener started, or by a worker). What must happen
within Slack's 3 seconds without a row also runs in a task started after the ack
(``Inbox.after_ack``: modals opened with a ``trigger_id``, account verbs); what *is* the ack stays
in the listener: options answers, view-submission errors, the ack of link buttons.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt.async_app import AsyncApp

from bot.approvals import listeners as approvals
from bot.evaluation import listeners as evaluation
from bot.guardrails import listeners as guardrails
from bot.history import listeners as history
from bot.lifecycle import listeners as changes
from bot.links import listeners as links
from bot.links import shortcut_listeners
from bot.scheduling import listeners as reminders
from bot.slack.router import CommandRouter
from bot.subscriptions import listeners as subscriptions
from bot.wiring import Services

#: Each feature's ``register(app, deps, router)``: its listeners, and its verbs on the router.
FeatureListeners = Callable[[AsyncApp, Services, CommandRouter], None]
FEATURE_LISTENERS: list[FeatureListeners] = [
    reminders.register,  # remind, reminders, scheduled; digest and reminder buttons
    guardrails.register,  # config, undo; the Undo button
    approvals.register,  # approvals, link-account, unlink-account; approval cards and modals
    shortcut_listeners.register,  # the "Change flag from message" message action
    links.register,  # link, link edit; the "Link message to flag" message action and flag picker
    history.register,  # history; the History button, the change card's history menu, Older
    evaluation.register,  # eval
    subscriptions.register,  # subscribe, subscriptions, unsubscribe; the Home tab
]


def register(app: AsyncApp, deps: Services) -> None:
    """Register every listener of the bot on ``app``."""
    router = CommandRouter(deps.changes, deps.verbs)
    changes.register(app, router, deps.changes, deps.settings.flagops_command, deps.inbox)
    for feature in FEATURE_LISTENERS:
        feature(app, deps, router)
