"""The Slack Web API client the bot uses: slack_sdk's ``AsyncWebClient``, honouring ``Retry-After``."""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings

# Slack's 429s say how long to wait; two waits cover a burst without stalling a listener for long.
RATE_LIMIT_RETRIES = 2


def make_slack_client(settings: Settings, *, timeout: int = 30) -> AsyncWebClient:
    """Build the Web API client for the bot token, at ``SLACK_API_URL`` when it is set.

    Connection errors are retried once (slack_sdk's default) and 429 answers are retried after
    their ``Retry-After`` (``AsyncRateLimitErrorRetryHandler``), up to ``RATE_LIMIT_RETRIES`` times.

    Args:
        settings: the bot's settings (token, API base URL).
        timeout: seconds per request.

    Returns:
        The client (one per process; it opens an aiohttp session per call).
    """
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_base or AsyncWebClient.BASE_URL,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )
    return client
