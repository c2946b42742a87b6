"""Failures in plain words, for Slack. Never a stack trace, never a token.

An error's message holds text from input (a typed key, a word) or from LaunchDarkly (its own
message): it is escaped here, so it can never make a mention or a link (``error_text``).
"""

from __future__ import annotations

import logging
import re

from bot.launchdarkly import errors as ld_errors
from bot.slack.blocks import clip, escape
from commands.errors import CommandError, FlagopsError

log = logging.getLogger(__name__)

#: How much of LaunchDarkly's own message a card or thread reply quotes (Details has it whole).
QUOTE_LIMIT = 200


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
        # One plain sentence: LaunchDarkly's code, route and request id are for Details and the
        # log (``technical``), not for the person in an incident.
        return _plain(error)
    if isinstance(error, FlagopsError):
        return error_text(error)
    return "Something went wrong on our side; it has been logged."


def quote_launchdarkly(message: str, limit: int = QUOTE_LIMIT) -> str:
    """LaunchDarkly's own message, quoted short and inert: one line, at most ``limit`` characters,
    in a code span (no bold, italics, strikes, mentions or live links), backticks made quotes."""
    text = clip(" ".join(_LINKS.sub("(link)", message).split()).rstrip("."), limit).replace("`", "'")
    return f"`{escape(text)}`" if text else "no message"


# A URL in LaunchDarkly's words is not shown (even in a code span, a copied link should be ours).
_LINKS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)\S*", re.IGNORECASE)


def _plain(error: ld_errors.LaunchDarklyError) -> str:
    said = quote_launchdarkly(error.message)
    match error:
        case ld_errors.ConflictError():
            return "It conflicts with a pending approval request or scheduled change on this flag."
        case ld_errors.OptimisticLockError():
            return "The flag changed in LaunchDarkly while this was being sent."
        case ld_errors.PatchFailed():
            return f"LaunchDarkly could not apply it to the flag as it is now (it said {said})."
        case ld_errors.InvalidRequest():
            return f"LaunchDarkly refused the change (it said {said})."
        case ld_errors.ApprovalRequired():
            return "This environment requires approval in LaunchDarkly."
        case ld_errors.RateLimited():
            return "LaunchDarkly is rate limiting requests right now."
        case ld_errors.ServerError():
            status = f" ({error.status})" if error.status else ""
            return f"LaunchDarkly had an internal error{status}."
        case ld_errors.TimeoutError_():
            return "LaunchDarkly did not answer in time."
        case ld_errors.Unreachable():
            return "Could not reach LaunchDarkly."
        case ld_errors.OutcomeUnknown():
            return "LaunchDarkly did not answer the write, so it may or may not have been applied."
    return f"{error.summary} (it said {said})."


#: Failures that pass: the answer to a command says to try again.
_RETRYABLE = (ld_errors.RateLimited, ld_errors.ServerError, ld_errors.Unreachable)


def technical(error: BaseException) -> str:
    """What LaunchDarkly answered, for a card's Details and the log (never for the card itself):
    status, code, LaunchDarkly's message, the request and LaunchDarkly's request id. Not escaped."""
    if not isinstance(error, ld_errors.LaunchDarklyError):
        return type(error).__name__
    parts = [f"LaunchDarkly {error.status}" if error.status else "LaunchDarkly: no answer"]
    if error.code:
        parts.append(error.code)
    route = f"{error.method} {error.path}".strip()
    if route:
        parts.append(route)
    if error.id:
        parts.append(f"request id {error.id}")
    # The message last: however long it is, a clipped copy (Details) keeps the code, route and id.
    parts.append(f"“{error.message}”")
    return " · ".join(parts)


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
    if isinstance(error, ld_errors.LaunchDarklyError):
        log.info("answered a LaunchDarkly failure: %s", technical(error))
        if isinstance(error, _RETRYABLE):
            text += " Nothing changed; try again in a minute."
    if isinstance(error, CommandError) and error.usage:
        text += f"\nUsage: `{escape(error.usage)}`"
    return text
