"""``target new-checkout production <@U0BOB> -> true``: a mentioned person is targeted as a user
whose key is their email, looked up in Slack (``users.info``, which needs ``users:read.email``).

The card says it (":bust_in_silhouette: <@U0BOB> as user `bob@example.com`"); a person Slack
shows no email for, a bot, a deactivated account or an unknown id is refused in plain words. The
email is the key exactly as Slack gives it (not lower-cased: keys are case-sensitive); one with
capitals says so on the card.
"""

from __future__ import annotations

from bot.slack.blocks import escape
from bot.slack.messenger import Messenger, SlackFailure
from commands.errors import CommandError
from commands.grammar import mentioned_user
from commands.intents import (
    AddTargets,
    AddUserTargets,
    AnyIntent,
    ChangeCommand,
    RemoveTargets,
    RemoveUserTargets,
    ReplaceTargets,
    ReplaceUserTargets,
)

#: At most this many people by mention in one command (each is one ``users.info`` call).
MAX_MENTIONS = 25


class MentionRefused(CommandError):
    """A mentioned person cannot be targeted; the message is mrkdwn built from a checked user id."""

    is_mrkdwn = True


def _keys(change: AnyIntent) -> list[str]:
    if isinstance(change, AddTargets | RemoveTargets | AddUserTargets | RemoveUserTargets):
        return list(change.keys)
    if isinstance(change, ReplaceTargets | ReplaceUserTargets):
        return [key for group in change.targets for key in group.keys]
    return []


def mentioned(command: ChangeCommand) -> list[str]:
    """The user ids mentioned as target keys, in order, each once."""
    found = [mentioned_user(key) for change in command.changes for key in _keys(change)]
    return list(dict.fromkeys(uid for uid in found if uid is not None))


async def email_of(messenger: Messenger, user_id: str) -> str:
    """The email Slack has for ``user_id``.

    Raises:
        MentionRefused: unknown, a bot, deactivated, or no email visible to the bot.
    """
    who = f"<@{user_id}>"
    try:
        user = await messenger.user(user_id)
    except SlackFailure as failure:
        if failure.reason in ("user_not_found", "users_not_found"):
            raise MentionRefused(f"Slack knows no person {who} here. Nothing was sent.") from None
        raise MentionRefused(
            f"I could not look up {who} in Slack ({escape(failure.reason[:60])}): target them by their "
            "key instead. Nothing was sent."
        ) from None
    if user.get("is_bot") or user.get("deleted"):
        kind = "a bot" if user.get("is_bot") else "a deactivated account"
        raise MentionRefused(f"{who} is {kind}, not a person to target. Nothing was sent.")
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    email = profile.get("email") if isinstance(profile, dict) else None
    if not isinstance(email, str) or "@" not in email or len(email) > 254 or not email.isprintable():
        raise MentionRefused(
            f"Slack shows me no email for {who} (the bot needs the `users:read.email` scope, or the "
            "profile hides it): target them by their key instead. Nothing was sent."
        )
    return email


def _case_note(email: str) -> str:
    """The email is used exactly as Slack gives it (LaunchDarkly keys are case-sensitive, and flagops
    cannot know how the app spells its keys); one with capitals says so on the card."""
    if email == email.lower():
        return ""
    return (
        " (exactly as Slack has it: keys are case-sensitive, so if your app sends emails in lower case, "
        f"target `{escape(email.lower())}` instead)"
    )


async def people_as_users(messenger: Messenger, command: ChangeCommand) -> tuple[ChangeCommand, list[str]]:
    """``command`` with each mentioned person's placeholder key replaced by their email, and the
    card lines that say so.

    Raises:
        MentionRefused: a person cannot be targeted, or too many are mentioned.
    """
    ids = mentioned(command)
    if not ids:
        return command, []
    if len(ids) > MAX_MENTIONS:
        raise MentionRefused(
            f"{len(ids)} people mentioned: at most {MAX_MENTIONS} in one command. Nothing was sent."
        )
    emails = {f"<@{uid}>": await email_of(messenger, uid) for uid in ids}

    def swap(keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(emails.get(key, key) for key in keys))

    changes: list[AnyIntent] = []
    for change in command.changes:
        if isinstance(change, AddTargets | RemoveTargets | AddUserTargets | RemoveUserTargets):
            change = change.model_copy(update={"keys": swap(change.keys)})
        elif isinstance(change, ReplaceTargets | ReplaceUserTargets):
            groups = tuple(g.model_copy(update={"keys": swap(g.keys)}) for g in change.targets)
            change = change.model_copy(update={"targets": groups})
        changes.append(change)
    notes = [
        f":bust_in_silhouette: {key} as user `{escape(email)}`{_case_note(email)}"
        for key, email in emails.items()
    ]
    return command.model_copy(update={"changes": tuple(changes)}), notes
