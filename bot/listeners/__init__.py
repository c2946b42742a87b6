"""Bolt listeners: verify (Bolt's middleware), ack at once, hand over to the lifecycle.

Each listener is a few lines. Nothing talks to LaunchDarkly or the database before ``ack()``:
with ``process_before_response=False`` Bolt answers Slack's HTTP request as soon as ``ack`` is
called, and the listener's remaining work runs after.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt.async_app import AsyncApp

from bot.app import Deps
from bot.listeners import changes
from bot.router import CommandRouter

#: Each feature's ``register(app, deps, router)``: its listeners, and its verbs on the router.
FeatureListeners = Callable[[AsyncApp, Deps, CommandRouter], None]
FEATURE_LISTENERS: list[FeatureListeners] = []


def register(app: AsyncApp, deps: Deps) -> None:
    """Register every listener of the bot on ``app``."""
    router = CommandRouter(deps.changes)
    changes.register(app, router, deps.changes, deps.settings.flagops_command)
    for feature in FEATURE_LISTENERS:
        feature(app, deps, router)

from bot.listeners import reminders as _reminders  # noqa: E402  (issue 6)

FEATURE_LISTENERS.append(_reminders.register)

from bot.listeners import guardrails as _guardrails  # noqa: E402  (issue 7)

FEATURE_LISTENERS.append(_guardrails.register)

from bot.listeners import approvals as _approvals  # noqa: E402  (after FEATURE_LISTENERS exists)

FEATURE_LISTENERS.append(_approvals.register)

from bot.listeners import shortcuts as _shortcuts  # noqa: E402  (issue 5: message actions)

FEATURE_LISTENERS.append(_shortcuts.register)

from bot.listeners import links as _links  # noqa: E402  (issue 5: flag links)

FEATURE_LISTENERS.append(_links.register)
