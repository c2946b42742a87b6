"""Failures in plain words, for Slack. Never a stack trace, never a token."""

from __future__ import annotations

from bot.launchdarkly import errors as ld_errors
from commands.errors import FlagopsError


def explain_error(error: FlagopsError | BaseException) -> str:
    """A failure in plain words, with what to do next where we know it. Never a token."""
    if isinstance(error, ld_errors.Unauthorized):
        return (
            "LaunchDarkly did not accept the bot's access token (401): it is unknown, revoked or "
            "expired. Ask an admin to set a valid LD_API_TOKEN."
        )
    if isinstance(error, ld_errors.Forbidden):
        return f"The LaunchDarkly token lacks the right to do this (403): {error.message}"
    if isinstance(error, ld_errors.NotFound):
        return f"LaunchDarkly could not find it (404): {error.message}"
    if isinstance(error, ld_errors.LaunchDarklyError):
        return str(error)
    if isinstance(error, FlagopsError):
        return error.message
    return "Something went wrong on our side; it has been logged."
