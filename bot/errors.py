"""Failures in plain words, for Slack. Never a stack trace, never a token.

An error's message holds text from input (a typed key, a word) or from LaunchDarkly (its own
message): it is escaped here, so it can never make a mention or a link (``error_text``).
"""

from __future__ import annotations

from bot.launchdarkly import errors as ld_errors
from bot.slack.blocks import escape
from commands.errors import CommandError, FlagopsError


def error_text(error: FlagopsError | BaseException) -> str:
    """An error's own message, escaped for mrkdwn (it may hold typed or LaunchDarkly text)."""
    if isinstance(error, FlagopsError):
        return error.message if error.is_mrkdwn else escape(error.message)
    return escape(str(error))


def explain_error(error: FlagopsError | BaseException) -> str:
    """A failure in plain words, with what to do next where we know it. Never a token; mrkdwn
    with the error's own text escaped."""
    if isinstance(error, ld_errors.Unauthorized):
        return (
            "LaunchDarkly did not accept the bot's access token (401): it is unknown, revoked or "
            "expired. Ask an admin to set a valid LD_API_TOKEN."
        )
    if isinstance(error, ld_errors.Forbidden):
        return f"The LaunchDarkly token lacks the right to do this (403): {error_text(error)}"
    if isinstance(error, ld_errors.NotFound):
        return f"LaunchDarkly could not find it (404): {error_text(error)}"
    if isinstance(error, ld_errors.LaunchDarklyError):
        return escape(str(error))  # LaunchDarkly's words, with its code and request id
    if isinstance(error, FlagopsError):
        return error_text(error)
    return "Something went wrong on our side; it has been logged."


def answer(error: FlagopsError) -> str:
    """The whole answer to a person about an error flagops raised on purpose: the error's icon and
    :func:`user_message`. Listeners that only pass an error on to the person use this (or let it
    reach the app's error handler, which does)."""
    return f"{error.icon} {user_message(error)}"


def user_message(error: FlagopsError) -> str:
    """What the user is told about an error flagops raised on purpose: ``explain_error``, with the
    verb's usage when the command was wrong. The one path from an error to a user (the app's error
    handler uses it for anything a listener did not answer itself)."""
    text = explain_error(error)
    if isinstance(error, CommandError) and error.usage:
        text += f"\nUsage: `{escape(error.usage)}`"
    return text
