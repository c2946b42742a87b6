"""What every feature's listeners are given: built once per process, shared (``Deps``), and the
shape of a feature (``Feature``: ``register(app, deps)``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.guardrails.channel_config import ChannelConfig
from bot.launchdarkly.client import LaunchDarklyClient
from bot.lifecycle.service import ChangeService
from bot.persistence.store import Store
from bot.scheduling.jobs import JobStore


@dataclass(frozen=True)
class Deps:
    """What every feature's listeners may use: built once per process, shared."""

    settings: Settings
    store: Store
    ld: LaunchDarklyClient
    slack: AsyncWebClient
    changes: ChangeService
    channels: ChannelConfig  # each channel's settings (`/flag config`)
    jobs: JobStore  # what is due: reminders, digests, checks


Feature = Callable[[AsyncApp, Deps], None]
