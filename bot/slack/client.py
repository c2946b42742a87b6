"""The Slack Web API client the bot uses: slack_sdk's ``AsyncWebClient``, honouring ``Retry-After``."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config import Settings

# Slack's broadcast mentions. flagops never means to make one, so none leaves the bot in any field,
# whatever a flag's name, a rule's description or a typed comment held. (User-group mentions are
# made on purpose from the policy's group ids: those stay, and typed text is escaped where shown.)
_BROADCAST = re.compile(r"<(?=!(?:channel|here|everyone)\b)", re.IGNORECASE)


def defuse(value: Any) -> Any:
    """``value`` (a text, blocks, a view) with every broadcast mention written out as plain text."""
    if isinstance(value, str):
        return _BROADCAST.sub("&lt;", value)
    if isinstance(value, list):
        return [defuse(v) for v in value]
    if isinstance(value, dict):
        return {k: defuse(v) for k, v in value.items()}
    return value


class FlagopsWebClient(AsyncWebClient):
    """``AsyncWebClient`` whose every message and view is defused on the way out (``defuse``):
    the last line of defence behind the escaping of each piece of text, at the one door that all
    Web API calls go through."""

    async def api_call(
        self,
        api_method: str,
        *,
        json: dict[str, Any] | None = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> AsyncSlackResponse:
        if api_method.startswith(("chat.", "views.")):
            json, data, params = defuse(json), defuse(data), defuse(params)
        return await super().api_call(api_method, json=json, data=data, params=params, **kwargs)


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
    client = FlagopsWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_base or AsyncWebClient.BASE_URL,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )
    return client
