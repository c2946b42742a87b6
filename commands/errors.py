"""The error tree of flagops.

::

    FlagopsError                 anything flagops raises on purpose
    ├── CommandError             the user's text or reference is wrong; shown to the user as is
    │   └── ResolveError         a name in the command matches nothing on the flag (with candidates)
    └── EngineRefusal            a semantic patch cannot apply to a flag document (names the
                                 instruction and the reason, as LaunchDarkly would refuse it)

``bot.launchdarkly.errors.LaunchDarklyError`` (one subclass per HTTP outcome) also derives from
``FlagopsError``. Anything that is not a ``FlagopsError`` is a bug: it is logged with its traceback
and the user gets a generic apology, never the traceback.
"""

from __future__ import annotations


class FlagopsError(Exception):
    """Base of every error flagops raises on purpose; ``message`` is safe to show a user.

    ``message`` is plain text (it may echo what was typed, or LaunchDarkly's words): whoever shows
    it in Slack escapes it. An error whose message the bot composed as Slack markup itself, with
    mentions built from ids and every other part escaped, says so with ``is_mrkdwn``.
    """

    is_mrkdwn: bool = False
    icon: str = ":warning:"  # how an answer about it starts (a refusal of access: ``:no_entry:``)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CommandError(FlagopsError):
    """The command text is wrong. ``usage`` is the usage of the verb involved, when known.

    ``guess`` is ``(typed, meant)`` when exactly one correction comes close (a flag key, an
    environment, a verb, a segment, a variation): the answer then offers the corrected command.
    """

    guess: tuple[str, str] | None = None

    def __init__(
        self, message: str, usage: str | None = None, *, guess: tuple[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.usage = usage
        if guess is not None and guess[0] != guess[1]:
            self.guess = guess

    def __str__(self) -> str:
        return f"{self.message}\nUsage: {self.usage}" if self.usage else self.message


class ResolveError(CommandError):
    """A reference (variation, rule, clause, flag, environment) matches nothing.

    ``candidates`` lists what it could have been, best first.
    """

    def __init__(
        self,
        message: str,
        candidates: list[str] | None = None,
        usage: str | None = None,
        *,
        guess: tuple[str, str] | None = None,
    ):
        super().__init__(message, usage, guess=guess)
        self.candidates = candidates or []


class EngineRefusal(FlagopsError):
    """A semantic patch cannot apply: ``index`` and ``kind`` name the instruction that refused."""

    def __init__(self, message: str, *, index: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.kind = kind
