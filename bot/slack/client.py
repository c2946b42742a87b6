"""The Slack Web API client the bot uses: slack_sdk's ``AsyncWebClient``, honouring ``Retry-After``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
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
    Web API calls go through.

    ``pooled``: its calls share one aiohttp session (their connections stay open between calls;
    slack_sdk alone opens a session, so a connection and a TLS handshake, per call) until
    :meth:`aclose`; after that, or from another event loop, each call opens its own again.
    """

    def __init__(self, *args: Any, pooled: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = pooled
        self._pool_loop: asyncio.AbstractEventLoop | None = None

    def _pooled(self) -> None:
        if not self._pool:
            return
        loop = asyncio.get_running_loop()
        if self._pool_loop is None:
            # No limit on connections, as with a session per call: a burst's calls never queue
            # for one (the timeout would count that wait).
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), connector=aiohttp.TCPConnector(limit=0)
            )
            self._pool_loop = loop
        elif self._pool_loop is not loop:  # its session belongs to another loop: no pool here
            self._pool, self.session = False, None

    async def aclose(self) -> None:
        """Close the shared session; later calls open a session each."""
        self._pool = False
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()

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
        self._pooled()
        return await super().api_call(api_method, json=json, data=data, params=params, **kwargs)


# Slack's 429s say how long to wait; two waits cover a burst without stalling a listener for long.
RATE_LIMIT_RETRIES = 2


def make_slack_client(settings: Settings, *, timeout: int = 30, pooled: bool = False) -> FlagopsWebClient:
    """Build the Web API client for the bot token, at ``SLACK_API_URL`` when it is set.

    Connection errors are retried once (slack_sdk's default) and 429 answers are retried after
    their ``Retry-After`` (``AsyncRateLimitErrorRetryHandler``), up to ``RATE_LIMIT_RETRIES`` times.

    Args:
        settings: the bot's settings (token, API base URL).
        timeout: seconds per request.
        pooled: share one session between calls (the serving processes; ``aclose()`` it).

    Returns:
        The client (one per process).
    """
    client = FlagopsWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_base or AsyncWebClient.BASE_URL,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
        pooled=pooled,
    )
    return client
