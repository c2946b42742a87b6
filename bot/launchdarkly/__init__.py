"""Everything flagops knows about LaunchDarkly: the client, its models and errors, the sandbox."""

from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.errors import LaunchDarklyError

__all__ = ["LaunchDarklyClient", "LaunchDarklyError"]
