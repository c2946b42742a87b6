"""The one configuration object of the bot, read from the environment or a ``.env`` file.

``main()`` builds it once with :func:`load_settings` and passes it down; nothing else reads
``os.environ``. Tests build ``Settings(_env_file=None, ...)`` directly.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from commands.errors import FlagopsError

Mode = Literal["serve", "console", "migrate"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///flagops.sqlite3"
OAUTH_CALLBACK_PATH = "/oauth/launchdarkly/callback"
WEBHOOK_PATH = "/launchdarkly/webhook"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(FlagopsError):
    """The configuration is incomplete or invalid; ``message`` says what to set, in one place."""


def parse_duration(value: object) -> timedelta:
    """Read a duration given as seconds (``900``), with a unit (``15m``, ``1h``, ``30s``, ``1d``)
    or as a ``timedelta``.

    Args:
        value: the raw value from the environment or code.

    Returns:
        The duration.

    Raises:
        ValueError: the value is not a positive duration in one of those forms.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration = timedelta(seconds=value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        duration = timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2].lower()])
    else:
        raise ValueError(f"not a duration: {value!r} (give seconds, or e.g. 15m, 1h)")
    if duration <= timedelta(0):
        raise ValueError("the duration must be positive")
    return duration


def normalise_database_url(url: str) -> str:
    """Give a database URL the asyncio driver SQLAlchemy needs.

    Heroku and others hand out ``postgres://`` or ``postgresql://``; SQLAlchemy's asyncio engine
    needs ``postgresql+asyncpg://``. Plain ``sqlite://`` becomes ``sqlite+aiosqlite://``. URLs that
    already name a driver are left alone.

    Args:
        url: the URL as configured.

    Returns:
        The URL with an asyncio driver.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Settings(BaseSettings):
    """Everything the bot reads from its environment (names are the environment variables)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, frozen=True
    )

    slack_bot_token: SecretStr = Field(description="Bot User OAuth Token (xoxb-...)")
    slack_signing_secret: SecretStr = Field(description="Basic Information > Signing Secret")
    slack_app_token: SecretStr | None = Field(None, description="App-level token (xapp-...): Socket Mode")
    slack_api_url: str | None = Field(None, description="another Slack Web API base URL")
    ld_api_token: SecretStr = Field(description="LaunchDarkly API access token (writer role)")
    ld_base_url: str = "https://app.launchdarkly.com"
    ld_project: str = "default"
    database_url: str = Field(DEFAULT_DATABASE_URL, repr=False)  # may hold a password
    port: int = Field(3000, ge=1, le=65535)
    flagops_command: str = "/flag"
    # Guardrails and channel defaults (bot/guardrails/policy.py, bot/guardrails/channel_config.py).
    flagops_policy: str | None = Field(None, description="path of the policy TOML file; unset: allow all")
    flagops_default_environment: str | None = Field(None, description="environment when a command omits it")
    flagops_timezone: str = Field("UTC", description="channels' time zone unless /flag config tz sets one")
    flagops_confirm_ttl: timedelta = timedelta(minutes=15)
    flagops_scheduler: Literal["on", "off"] = "on"
    flagops_migrate_on_start: bool = Field(
        True, description="migrate the database at start (false: `python -m bot migrate` as a release step)"
    )
    flagops_secret_key: SecretStr | None = None
    ld_timeout: float = Field(10.0, gt=0, description="seconds to wait for LaunchDarkly per request")
    ld_max_rate_limit_wait: float = Field(30.0, ge=0, description="seconds to wait out 429s, in all")
    flagops_settle_window: float = Field(
        0.0,
        ge=0,
        description="seconds after a write with an unknown outcome before it is decided for good "
        "(at least LD_TIMEOUT + LD_MAX_RATE_LIMIT_WAIT)",
    )
    flagops_response_url_hosts: str = Field(
        "hooks.slack.com,hooks.slack-gov.com",
        description="hosts a payload's response_url may point to (Slack's; GovSlack's)",
    )
    flagops_shutdown_grace: float = Field(
        20.0, ge=0, description="seconds a stopping process lets the writes in flight finish"
    )
    # The durable inbox (bot/inbox/): accepted commands and clicks are written before the ack and
    # worked from the database, by the web process itself ("web") or by `python -m bot worker`s only.
    flagops_inbox: Literal["web", "workers"] = Field(
        "web", description="who works the inbox: the web process (web) or `python -m bot worker` (workers)"
    )
    flagops_inbox_lease: float = Field(
        30.0, gt=0, description="seconds a worker holds a row before another may take it over (renewed)"
    )
    flagops_inbox_poll: float = Field(
        1.0, gt=0, description="seconds between a worker's looks at the inbox (Postgres NOTIFY wakes it too)"
    )
    flagops_inbox_concurrency: int = Field(16, ge=1, description="rows one worker works at once")
    # While deliveries are arriving (a burst), the web process works at most this many rows at
    # once, so that the acks get the event loop first (bot/inbox/service.py, "the front door first").
    flagops_inbox_burst_concurrency: int = Field(
        0, ge=0, description="rows the web process works at once while deliveries arrive (besides one alone)"
    )
    # Approvals and linked accounts (bot/approvals/service.py, bot/identity/accounts.py).
    flagops_require_linked_accounts: bool = False
    # Whoever acts through the service token acts within their own LaunchDarkly roles
    # (bot/identity/roles.py): a Slack user whose email is no member is refused, unless this says
    # "service-token" (the token's rights, as before the role check).
    flagops_unmapped_users: Literal["refuse", "service-token"] = "refuse"
    flagops_role_cache: float = Field(60.0, ge=0, description="seconds a member's roles are remembered")
    # Connect with LaunchDarkly (OAuth 2.0 authorization code; bot/identity/oauth.py).
    ld_oauth_client_id: str | None = Field(None, description="the OAuth client registered in LaunchDarkly")
    ld_oauth_client_secret: SecretStr | None = Field(None, description="its secret (shown once)")
    flagops_public_url: str | None = Field(
        None, description="the bot's https base URL: the OAuth callback is <it>/oauth/launchdarkly/callback"
    )
    flagops_approvals_channel: str | None = Field(None, description="channel id for every approval card")
    flagops_approval_reviewers: dict[str, list[str]] = Field(
        default_factory=dict,
        description='JSON: environment (or "*") → member emails / team keys to notify',
    )
    flagops_flag_search_timeout: float = Field(
        1.5, gt=0, le=2.5, description="seconds a flag picker waits for LaunchDarkly (Slack allows 3)"
    )
    # Scheduler and reminders.
    flagops_scheduler_interval: float = Field(15.0, gt=0, description="seconds between runs of due jobs")
    flagops_approval_remind_after: timedelta = timedelta(hours=4)
    flagops_approval_remind_every: timedelta = timedelta(days=1)
    flagops_digest_channels: str = Field("", description="CHANNEL[=Time/Zone],... that get the digest")
    flagops_digest_cron: str = Field("0 9 * * mon", description="crontab of the digest, channel's zone")
    flagops_stale_days: int = Field(7, ge=1, description="days launched or inactive before a flag is stale")
    flagops_snooze: timedelta = timedelta(days=30)
    # Channel subscriptions (bot/subscriptions/): without a webhook, the audit log is polled.
    flagops_subscription_poll_interval: float = Field(
        60.0, ge=5, description="seconds between looks at the audit log when there is no webhook"
    )

    @field_validator("slack_bot_token", "slack_signing_secret", "ld_api_token", mode="after")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            # A blank variable is reported with the missing ones: same fix, same message.
            raise PydanticCustomError("missing", "Field required")
        return value

    @field_validator(
        "slack_app_token",
        "slack_api_url",
        "flagops_secret_key",
        "ld_oauth_client_id",
        "ld_oauth_client_secret",
        "flagops_public_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url", mode="after")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator(
        "flagops_confirm_ttl",
        "flagops_approval_remind_after",
        "flagops_approval_remind_every",
        "flagops_snooze",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("flagops_scheduler", "flagops_inbox", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("ld_base_url", "slack_api_url", "flagops_public_url", mode="after")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def response_url_hosts(self) -> frozenset[str]:
        """The hosts a ``response_url`` may name: anything else is never called."""
        return frozenset(h.strip().lower() for h in self.flagops_response_url_hosts.split(",") if h.strip())

    @property
    def settle_seconds(self) -> float:
        """How long after a write was sent LaunchDarkly may still apply it: the configured
        window, and never less than the request timeout plus the longest rate-limit wait."""
        return max(self.flagops_settle_window, self.ld_timeout + self.ld_max_rate_limit_wait)

    @property
    def oauth_configured(self) -> bool:
        """Whether people connect with LaunchDarkly's OAuth (client, secret, public URL and the
        key that encrypts their tokens are all set); else the pasted-token modal is the way."""
        return bool(
            self.ld_oauth_client_id
            and self.ld_oauth_client_secret
            and self.flagops_public_url
            and self.flagops_secret_key
        )

    @property
    def oauth_callback_url(self) -> str:
        """Where LaunchDarkly sends people back (the OAuth client's registered ``redirectUri``)."""
        return f"{self.flagops_public_url}{OAUTH_CALLBACK_PATH}"

    @property
    def slack_api_base(self) -> str | None:
        """The Slack Web API base URL with the trailing slash slack_sdk expects, or None."""
        return self.slack_api_url + "/" if self.slack_api_url else None


CONSOLE_SETTINGS: dict[str, Any] = {
    # The offline console talks to an in-process sandbox and fake Slack: these are its own
    # placeholders, never real credentials, so the console needs no environment at all.
    "slack_bot_token": "xoxb-flagops-console",
    "slack_signing_secret": "flagops-console-signing-secret",
    "slack_app_token": None,
    "ld_api_token": "api-flagops-console",
    "ld_project": "demo",
    "flagops_scheduler": "off",
    # The console's fake Slack hands out response_urls on loopback.
    "flagops_response_url_hosts": "hooks.slack.com,hooks.slack-gov.com,127.0.0.1",
}


MIGRATE_SETTINGS: dict[str, Any] = {
    # ``python -m bot migrate`` touches only the database: it needs no Slack or LaunchDarkly
    # credentials (a release step often runs without them), so these placeholders stand in.
    "slack_bot_token": "xoxb-flagops-migrate",
    "slack_signing_secret": "flagops-migrate",
    "ld_api_token": "api-flagops-migrate",
}


QUIET_LOGGERS = ("httpx", "httpcore")
"""Loggers kept to WARNING and up: httpx logs every HTTP request at INFO (each LaunchDarkly call;
per command, under load, a line each); the bot logs what a call meant, and any failure, itself."""


def configure_logging() -> None:
    """A process's logging: INFO and up, one line each, without :data:`QUIET_LOGGERS`' INFO lines."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def load_settings(mode: Mode = "serve", **overrides: Any) -> Settings:
    """Read the settings from the environment and ``.env``; explain every problem at once.

    Args:
        mode: ``serve`` (HTTP, or Socket Mode when ``SLACK_APP_TOKEN`` is set) needs the Slack and
            LaunchDarkly credentials; ``console`` needs nothing (offline placeholders are used and
            the environment's credentials are ignored).
        **overrides: values that win over the environment (used by the console and tests).

    Returns:
        The settings.

    Raises:
        ConfigError: a required variable is missing or a value is invalid. The message names each
            variable and points to the offline console; it never contains a secret.
    """
    values = (
        {**CONSOLE_SETTINGS, **overrides}
        if mode == "console"
        else {**MIGRATE_SETTINGS, **overrides}
        if mode == "migrate"
        else overrides
    )
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _missing_message(names: list[str]) -> str:
    listed = "\n".join(f"  - {name}: {_HINTS.get(name, '')}" for name in names)
    return (
        "flagops is not configured. Set these environment variables (or put them in .env):\n"
        f"{listed}\n"
        "To try flagops without Slack or LaunchDarkly, run the offline console: python -m bot console"
    )


_HINTS = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-...) from your Slack app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "the Signing Secret from your Slack app's Basic Information page",
    "LD_API_TOKEN": "a LaunchDarkly API access token with a writer role",
}


def _explain(exc: ValidationError) -> str:
    missing: list[str] = []
    invalid: list[str] = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]).upper()
        if error["type"] == "missing":
            missing.append(name)
        else:
            # The message only: pydantic's input echo could be a secret.
            invalid.append(f"  - {name}: {error['msg']}")
    parts: list[str] = []
    if missing:
        parts.append(_missing_message(missing))
    if invalid:
        parts.append("These settings are invalid:\n" + "\n".join(invalid))
    return "\n".join(parts)


class AdminSettings(BaseSettings):
    """What ``python -m bot webhook-setup`` reads besides :class:`Settings`: an admin-level token.

    Read by that command alone, never at run time (the bot's own ``LD_API_TOKEN`` is a writer's).
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    ld_admin_token: SecretStr | None = Field(None, description="an admin-level LaunchDarkly access token")

    @field_validator("ld_admin_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
