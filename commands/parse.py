"""Text → command: the entry point of the command language.

A command is ``<verb> <flag> [<env>] <arguments>``, with options anywhere and, for changes, an
optional schedule at the end. Several changes to one flag go in one command, separated by ``;``;
they are sent as one atomic semantic patch. After the first, a change may leave out the flag and
environment (or repeat both)::

    on new-checkout test; target user:alice -> true; off-variation false -m "QA" in 2 hours

**Options** (anywhere): ``--project/-p <key>``, ``--env/-e <key>``, ``--comment/-m <text>``,
``--approval``, ``--reviewers <who>[,<who>...]`` (Slack mentions, ``@name``, emails, member ids)
and, for ``list``, ``--tag <tag>``. ``--opt=value`` works too.

**The three meanings of ``in``**, decided in this order:

1. *Schedule*: a change command whose last words are ``in`` followed by a duration
   (``in 2 hours``, ``in 90m``, ``in 1h30m``, ``in a day``: numbers with units, nothing else)
   is scheduled; those words are removed before anything else is read.
2. *Environment*: ``in <env>`` where a verb expects its environment, right after the flag
   (``off new-checkout in production``).
3. *Operator*: ``in`` after an attribute inside a clause (``if country in US,CA``).

So ``if build in 2h`` at the end of a command is a schedule (quote the value: ``"2h"``), and
``off new-checkout in 2 hours`` is missing its environment. ``at`` likewise always starts the
schedule of a change (``at 2025-12-01 09:00``, ``at 5pm tomorrow``): everything after it is the time.

Parsing returns a command or raises :class:`~commands.errors.CommandError`, whatever the text:
the lexer and every grammar function fail only by raising it (tests drive arbitrary text through).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from commands import registry
from commands.contexts import read_context
from commands.errors import CommandError
from commands.grammar import DAY_WORDS, SUGGEST_CUTOFF, Cursor, clipped, describe_token, free_text, suggest
from commands.instructions import FlagJsonPatch, FlagMergePatch, JsonPatch, MergePatch, SemanticPatch
from commands.intents import (
    AnyIntent,
    ChangeCommand,
    Command,
    HelpCommand,
    ListCommand,
    RawCommand,
    ReservedCommand,
    Schedule,
    ShowCommand,
)
from commands.lexer import Token, normalise, source_slice, tokenize
from commands.request import validation_problems
from commands.verbs import CHANGE_VERBS

_OPTION_NAMES = {
    "--project": "project",
    "-p": "project",
    "--env": "env",
    "--environment": "env",
    "-e": "env",
    "--comment": "comment",
    "-m": "comment",
    "--approval": "approval",
    "--reviewers": "reviewers",
    "--reviewer": "reviewers",
    "--tag": "tag",
}
_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "wks": 604800,
    "week": 604800,
    "weeks": 604800,
}
_COMPACT_DURATION = re.compile(r"(?:[0-9]{1,6}(?:s|m|h|d|w))+")
_DURATION_PART = re.compile(r"([0-9]{1,6})(s|m|h|d|w)")
_NUMBER = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,3})?")
_FLAG_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class _Options:
    project: str | None = None
    env: str | None = None
    comment: str | None = None
    approval: bool = False
    reviewers: list[str] = field(default_factory=list)
    tag: str | None = None
    given: set[str] = field(default_factory=set)
    free_comment: bool = False  # `-m` took several unquoted words
    unquoted_comment: bool = False  # `-m` took unquoted words (one or more)
    comment_after: Token | None = None  # the token just before an unquoted `-m` (free text?)


def parse(text: str) -> Command:
    """Parse command text (the text after ``/flag``).

    Args:
        text: the command, as Slack sends it (escaped, with markup) or as typed in a console.

    Returns:
        A ChangeCommand, ShowCommand, ListCommand, HelpCommand, RawCommand or ReservedCommand.

    Raises:
        CommandError: the text is not a command; ``usage`` is the syntax of the verb involved.
    """
    source = normalise(text)
    account = _account_command(source)
    if account is not None:
        return account
    _refuse_near_account_verb(source)
    tokens, options = _extract_options(tokenize(text), source)
    if not tokens:
        raise CommandError("empty command: try `help`, or `on <flag> <env>`", "help [<topic>]")
    verb, tokens = _verb(tokens)
    if verb.scope != "none":
        return _change(verb, tokens, options, source)
    if any(t.is_punct(";") for t in tokens):
        raise CommandError(f"`{verb.name}` cannot be combined with other commands with ';'", verb.usage)
    cur = Cursor(tokens, verb.usage)
    if verb.group == "expert":
        return _raw(verb, cur, options)
    _refuse_options(verb, options, allowed={"project", "tag"} if verb.name == "list" else {"project"})
    if verb.name == "show":
        flag = _flag(cur)
        env = _env(cur, options, required=False)
        cur.done()
        return ShowCommand(flag=flag, environment=env, project=options.project)
    if verb.name == "list":
        words = [cur.name("a search text") for _ in range(len(tokens))]
        return ListCommand(query=" ".join(words) or None, tag=options.tag, project=options.project)
    if verb.name == "help":
        topic = source_slice(source, tokens) if tokens else None
        return HelpCommand(topic=topic or None)
    return _reserved(verb, cur, options, source)


# --- options, verb, schedule --------------------------------------------------------------------


def _extract_options(tokens: list[Token], source: str = "") -> tuple[list[Token], _Options]:
    options = _Options()
    rest: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.kind != "word" or not tok.text.startswith("-") or tok.text == "-" or tok.text[1:2].isdigit():
            rest.append(tok)
            continue
        name, has_inline, inline = tok.text.partition("=")
        if len(inline) >= 2 and inline[0] == inline[-1] and inline[0] in "\"'":
            inline = inline[1:-1]  # --tag="web"
        option = _OPTION_NAMES.get(name)
        if option is None:
            if name.startswith("--") or len(name) == 2:
                raise CommandError(f"unknown option {name}{suggest(name, list(_OPTION_NAMES))}")
            rest.append(tok)
            continue
        if option in options.given:
            raise CommandError(f"option {name} given twice")
        options.given.add(option)
        if option == "approval":
            if has_inline:
                raise CommandError("--approval takes no value")
            options.approval = True
            continue
        if option == "reviewers":
            i = _reviewers(tokens, i, inline if has_inline else None, options)
            continue
        if (
            option == "comment"
            and not has_inline
            and source
            and i < len(tokens)
            and tokens[i].kind in ("word", "mention", "channel", "special")
        ):
            # `-m rolled back, checkout errors 🎉` (`-m <@U0BOB> asked`): the words up to the next
            # option or `;`. A schedule right after them could be part of the comment: asked.
            end, stop = _comment_end(tokens, i)
            if stop < end:
                raise _schedule_after_text(
                    name, source_slice(source, tokens[i:stop]), source_slice(source, tokens[stop:end])
                )
            value = free_text(source_slice(source, tokens[i:end]), "the comment", Cursor([]))
            options.free_comment = end - i > 1
            options.unquoted_comment = True
            options.comment_after = rest[-1] if rest else None
            options.comment = " ".join(value.split())
            i = end
            continue
        if has_inline:
            value = inline
        else:
            if i >= len(tokens) or tokens[i].kind not in ("word", "string"):
                raise CommandError(f"option {name} needs a value")
            value = tokens[i].text
            i += 1
        if not value.strip() and option != "comment":
            raise CommandError(f"option {name} needs a value, not empty text")
        if option == "comment":
            free_text(value, "the comment", Cursor([]))
        setattr(options, option, value)
    return rest, options


def _comment_end(tokens: list[Token], i: int) -> tuple[int, int]:
    """Where an unquoted ``-m`` comment starting at ``tokens[i]`` ends (before the next option or
    ``;``, else at the end), and where a schedule right after its words starts (``at <time>``, a
    trailing ``in <duration>``), or that same end when there is none."""
    end = i
    while end < len(tokens):
        tok = tokens[end]
        if tok.is_punct(";") or (tok.is_word and tok.text.partition("=")[0] in _OPTION_NAMES):
            break
        end += 1
    return end, _trailing_schedule(tokens, i, end)


#: A time of day or a date: what makes ``at …`` inside unquoted free text a schedule (``at 9am``,
#: ``at 2026-12-01 09:00``) rather than words (``Shown to users at checkout``).
_TIME_WORDS = re.compile(
    r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s*(?:am|pm)\b|\bnoon\b|\bmidnight\b|\b\d{4}-\d{2}-\d{2}\b", re.IGNORECASE
)


def _time_follows(tokens: list[Token]) -> bool:
    """Whether ``tokens`` (after an ``at``) start a time: a number or a day first, and a time of
    day or a date among them (``9am``, ``Monday 09:00``, ``2026-12-01 09:00``, ``noon``)."""
    if not tokens or not tokens[0].is_word:
        return False
    first = tokens[0].text.lower()
    starts = first[:1].isdigit() or tokens[0].is_(*DAY_WORDS, "next", "noon", "midnight")
    return starts and _TIME_WORDS.search(" ".join(t.text for t in tokens)) is not None


def _trailing_schedule(tokens: list[Token], start: int, end: int) -> int:
    """Where a schedule ending ``tokens[start:end]`` begins after at least one word of text:
    ``at`` followed by a time of day or date (with a day word before it), or ``in <duration>``
    at the very end; ``end`` when there is none."""
    for j in range(start + 1, end):
        if tokens[j].is_("at") and _time_follows(tokens[j + 1 : end]):
            return j - 1 if tokens[j - 1].is_(*DAY_WORDS) and j - 1 > start else j
    for j in range(start + 1, end - 1):
        if tokens[j].is_("in") and duration_seconds_of(tokens[j + 1 : end]) is not None:
            return j
    return end


def _schedule_after_text(lead: str, text: str, when: str, what: str = "the comment") -> CommandError:
    """Unquoted free text followed by what reads as a schedule: asked, never guessed (an `off`
    delayed by a comment's `in 2 hours` is worse than a question)."""
    lead, text, when = clipped(lead, 80), clipped(text, 80), clipped(when, 60)
    return CommandError(
        f'Did you mean to schedule this? `{lead} {text} {when}` could be {what} "{text}" with the '
        f"change scheduled `{when}`, or all of it {what}, so I did neither. Quote {what}: "
        f'`{lead} "{text}" {when}` schedules the change; `{lead} "{text} {when}"` keeps it all as {what}.'
    )


def _reviewers(tokens: list[Token], i: int, inline: str | None, options: _Options) -> int:
    """``--reviewers <@U1>, @bob,carol@example.com``: mentions, @names, emails, member ids."""
    # After the option or a comma, a plain word is a reviewer too.
    expect_more = inline is None
    if inline:
        options.reviewers.append(inline)
    while i < len(tokens):
        tok = tokens[i]
        if tok.is_punct(","):
            expect_more = True
        elif tok.kind == "mention":
            options.reviewers.append(f"<@{tok.text}>")
            expect_more = False
        elif expect_more and tok.kind in ("word", "string") and tok.text and not tok.text.startswith("-"):
            options.reviewers.append(tok.text)
            expect_more = False
        else:
            break
        i += 1
    if not options.reviewers:
        raise CommandError("--reviewers needs at least one person: --reviewers @bob,<@U123>")
    return i


def _refuse_options(verb: registry.Verb, options: _Options, allowed: set[str]) -> None:
    extra = options.given - allowed
    if extra:
        names = ", ".join(f"--{o}" for o in sorted(extra))
        raise CommandError(f"`{verb.name}` does not take {names}", verb.usage)


def _verb(tokens: list[Token]) -> tuple[registry.Verb, list[Token]]:
    first = tokens[0]
    if first.kind != "word":
        raise CommandError(f"a command starts with a verb, not {describe_token(first)}; try `help`")
    word = first.text.lower()
    if len(tokens) > 1 and tokens[1].kind == "word":
        phrase = f"{word} {tokens[1].text.lower()}"
        if phrase in registry.VERB_INDEX:
            return registry.VERB_INDEX[phrase], tokens[2:]
    if word in registry.VERB_INDEX:
        return registry.VERB_INDEX[word], tokens[1:]
    head, _, tail = word.partition("-")
    if tail and f"{head} {tail}" in registry.VERB_INDEX:
        return registry.VERB_INDEX[f"{head} {tail}"], tokens[1:]
    if word in registry.VERB_HEADS:
        phrases = sorted(n for n in registry.VERB_INDEX if n.startswith(word + " "))
        got = describe_token(tokens[1]) if len(tokens) > 1 else "nothing"
        raise CommandError(f"`{word}` what? got {got}; expected one of: {', '.join(phrases)}")
    meant = MEANT.get(word)
    if meant:
        hint = ", did you mean " + " or ".join(f'"{verb}"' for verb in meant.split("|")) + "?"
        guess = meant if "|" not in meant else None
    else:
        hint = suggest(word, list(registry.VERB_INDEX))
        guess = hint.split('"')[1] if hint else None
    raise CommandError(
        f"unknown command `{clipped(first.text, 60)}`{hint} (`help` lists them)",
        guess=(first.text, guess) if guess else None,
    )


#: Words people type for a verb they mean (checked before spelling: `search` is not `archive`);
#: ``a|b`` names two.
MEANT: dict[str, str] = {
    "search": "list",
    "find": "list",
    "ls": "list",
    "flags": "list",
    "get": "show",
    "status": "show",
    "state": "show",
    "info": "show",
    "describe": "show",
    "view": "show",
    "kill": "off",
    "disable": "off",
    "stop": "off",
    "enable": "on",
    "start": "on",
    "activate": "on",
    "toggle": "on|off",
    "flip": "on|off",
    "audit": "history",
    "changes": "history",
    "who": "history",
    "check": "eval",
    "test": "eval",
    "approve": "approvals",
    "pending": "approvals",
    "percent": "rollout",
    "percentage": "rollout",
    "ramp": "rollout",
}


def _schedule(tokens: list[Token], source: str) -> tuple[list[Token], Schedule | None]:
    """Split a trailing ``at <time>`` or ``in <duration>`` off a change command's tokens."""
    for i, tok in enumerate(tokens):
        if tok.is_("at") and i >= 1:
            when = tokens[i + 1 :]
            if when and i >= 2 and tokens[i - 1].is_(*DAY_WORDS):
                # `off new-checkout production tomorrow at 9am`: the day belongs to the time.
                i -= 1
                when = tokens[i:]
            if not when:
                raise CommandError("`at` needs a time: at 2025-12-01 09:00, at 5pm tomorrow")
            if any(t.is_punct(";") for t in when):
                raise CommandError("the schedule (`at <time>`) goes at the very end of the command")
            return tokens[:i], Schedule(kind="at", text=source_slice(source, when))
    for i in range(len(tokens) - 2, 0, -1):
        if tokens[i].is_("in") and duration_seconds_of(tokens[i + 1 :]) is not None:
            return tokens[:i], Schedule(kind="in", text=source_slice(source, tokens[i + 1 :]))
    return tokens, None


def duration_seconds_of(tokens: list[Token]) -> int | None:
    """The length of a duration (``2 hours``, ``1h30m``, ``a day and 3 hours``), or None."""
    total = 0.0
    i = 0
    seen = False
    while i < len(tokens):
        tok = tokens[i]
        if seen and (tok.is_("and") or tok.is_punct(",")):
            i += 1
            continue
        if tok.kind != "word":
            return None
        word = tok.text.lower()
        if _COMPACT_DURATION.fullmatch(word):
            total += sum(int(n) * _UNITS[u] for n, u in _DURATION_PART.findall(word))
            i += 1
        elif (
            (_NUMBER.fullmatch(word) or word in ("a", "an"))
            and i + 1 < len(tokens)
            and tokens[i + 1].kind == "word"
            and tokens[i + 1].text.lower() in _UNITS
        ):
            amount = 1.0 if word in ("a", "an") else float(word)
            total += amount * _UNITS[tokens[i + 1].text.lower()]
            i += 2
        else:
            return None
        seen = True
    return int(total) if seen else None


def parse_duration(text: str) -> int:
    """Seconds in a schedule duration such as ``2 hours`` or ``1h30m``.

    Raises:
        CommandError: the text is not a duration.
    """
    seconds = duration_seconds_of(tokenize(text))
    if seconds is None:
        raise CommandError(f'"{text}" is not a duration (try 2 hours, 90m, 1h30m, a day)')
    return seconds


# --- change commands ----------------------------------------------------------------------------


def _flag(cur: Cursor) -> str:
    tok = cur.next("the flag key")
    if tok.kind not in ("word", "string") or not _FLAG_KEY.fullmatch(tok.text):
        raise cur.error(f"expected a flag key, got {describe_token(tok)}")
    return tok.text


#: Verbs whose environment may be left out (the bot fills in the channel's default environment).
OPTIONAL_ENV_VERBS = frozenset({"on", "off"})


def _env(cur: Cursor, options: _Options, *, required: bool) -> str | None:
    if options.env is not None:
        return options.env
    if cur.at_end() and not required:
        return None
    cur.accept("in")
    tok = cur.next("the environment (like test or production)")
    if tok.kind not in ("word", "string") or not _FLAG_KEY.fullmatch(tok.text):
        raise cur.error(f"expected an environment key, got {describe_token(tok)}")
    return tok.text


def _segments(tokens: list[Token]) -> list[list[Token]]:
    segments: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.is_punct(";"):
            segments.append([])
        else:
            segments[-1].append(tok)
    return segments


def _change(verb: registry.Verb, tokens: list[Token], options: _Options, source: str) -> ChangeCommand:
    if options.tag is not None:
        raise CommandError("--tag is for `list`", verb.usage)
    unscheduled = tokens
    tokens, schedule = _schedule(tokens, source)
    read = _changes(verb, tokens, options, source)
    if schedule is not None and read.free and tokens and read.free[-1] is tokens[-1]:
        # The schedule comes right after unquoted free text (`rename banner-color Sale in 2 days`,
        # `describe banner-color Shown to users at checkout`): `at` without a time of day or date
        # after it is text; a time or duration is asked about, never guessed.
        start = unscheduled.index(read.free[0])
        stop = _trailing_schedule(unscheduled, start, len(unscheduled))
        if stop == len(unscheduled):
            read, schedule = _changes(verb, unscheduled, options, source), None
        else:
            raise _schedule_after_text(
                source[: read.free[0].start].strip(),
                source_slice(source, unscheduled[start:stop]),
                source_slice(source, unscheduled[stop:]),
                read.free_what,
            )
    if options.unquoted_comment and any(t is options.comment_after for t in read.free):
        # `describe banner-color Use -m for messages`: is `-m …` part of the description?
        lead, text = (
            clipped(source[: read.free[0].start].strip(), 80),
            clipped(source_slice(source, read.free), 60),
        )
        comment = clipped(options.comment or "", 60)
        raise CommandError(
            f"Is `-m {comment}` part of {read.free_what}? I did not guess. All of it {read.free_what}: "
            f'`{lead} "{text} -m {comment}"`; a comment: quote {read.free_what} before it, '
            f'`{lead} "{text}" -m {comment}`.',
            read.verb.usage,
        )
    flag, env, changes, verb = read.flag, read.env, read.changes, read.verb
    if options.free_comment and env is None and any(c.environment_scoped for c in changes):
        # `off new-checkout -m QA production`: the words after -m are the comment, so the
        # environment was not said; never guess that it was meant to be one of them.
        raise CommandError(
            "`-m` takes the words after it as the comment: say the environment before it "
            f"(`{verb.name} {flag} production -m …`), or put the comment in quotes.",
            verb.usage,
        )
    return ChangeCommand(
        flag=flag,
        environment=env,
        project=options.project,
        changes=tuple(changes),
        comment=options.comment,
        approval=options.approval,
        reviewers=tuple(options.reviewers),
        schedule=schedule,
    )


@dataclass
class _Read:
    """A change command's segments as read: the flag, environment and changes, the last verb, and
    the tokens read as unquoted free text (a name, a description)."""

    verb: registry.Verb
    flag: str
    env: str | None
    changes: list[AnyIntent]
    free: list[Token]
    free_what: str


def _changes(verb: registry.Verb, tokens: list[Token], options: _Options, source: str) -> _Read:
    segments = _segments(tokens)
    free: list[Token] = []
    free_what = ""
    flag: str | None = None
    env: str | None = options.env
    changes: list[AnyIntent] = []
    for n, segment in enumerate(segments):
        if n > 0:
            if not segment:
                if n == len(segments) - 1:
                    continue  # a trailing ';' is harmless
                raise CommandError("an empty change between ';'")
            verb, segment = _verb(segment)
            if verb.scope == "none":
                raise CommandError(f"`{verb.name}` cannot be combined with changes", verb.usage)
        cur = Cursor(segment, verb.usage, source)
        if flag is None:
            flag = _flag(cur)
            if verb.scope == "env":
                # `on`/`off` alone may leave the environment to the channel's default
                # (`/flag config env`); every other verb reads more after it, so it must be said.
                env = _env(cur, options, required=verb.name not in OPTIONAL_ENV_VERBS)
        else:
            _repeated_flag_env(cur, verb, flag, env, options)
            if verb.scope == "env" and env is None:
                env = _env(cur, options, required=True)
        changes += CHANGE_VERBS[verb.name](cur, flag)
        if cur.free_tokens:
            free, free_what = cur.free_tokens, cur.free_what
    assert flag is not None  # the first segment always reads the flag
    return _Read(verb, flag, env, changes, free, free_what)


def _repeated_flag_env(
    cur: Cursor, verb: registry.Verb, flag: str, env: str | None, options: _Options
) -> None:
    """A later change may repeat the flag (and then its environment); they must be the same."""
    tok = cur.peek()
    if tok is None or tok.kind not in ("word", "string") or tok.text != flag:
        return
    cur.pos += 1
    if verb.scope == "env" and env is not None and options.env is None:
        again = _env(cur, options, required=True)
        if again != env:
            raise cur.error(f"one command changes one environment: {env}, not {again}")


# --- raw escape hatches -------------------------------------------------------------------------


def _json(cur: Cursor, what: str) -> Any:
    tok = cur.next(f"the JSON {what}")
    if tok.kind != "json":
        raise cur.error(f"expected the JSON {what}, got {describe_token(tok)}")
    try:
        return json.loads(tok.text)
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        raise cur.error(f"invalid JSON: {exc}") from None


def _validated(cur: Cursor, model: Any, body: Any) -> Any:
    try:
        return model.model_validate(body).body()
    except ValidationError as exc:
        raise cur.error("invalid body: " + "; ".join(validation_problems(exc))) from None


def _raw(verb: registry.Verb, cur: Cursor, options: _Options) -> RawCommand:
    _refuse_options(
        verb, options, allowed={"project", "env", "comment"} if verb.name == "raw" else {"project", "comment"}
    )
    if verb.name == "project-patch":
        body = _validated(cur, JsonPatch, _json(cur, "array of operations"))
        cur.done()
        return RawCommand(shape="project-patch", body=body, project=options.project)
    flag = _flag(cur)
    if verb.name == "raw":
        env = options.env
        if env is None and cur.peek() is not None and cur.peek().kind != "json":  # type: ignore[union-attr]
            env = _env(cur, options, required=True)
        data = _json(cur, "instructions")
        cur.done()
        if isinstance(data, list):
            data = {"instructions": data}
        if not isinstance(data, dict):
            raise cur.error("expected a JSON array of instructions, or an object with `instructions`")
        if env is not None:
            if data.get("environmentKey", env) != env:
                raise cur.error(f"the body's environmentKey is not {env}")
            data["environmentKey"] = env
        if options.comment is not None:
            data["comment"] = options.comment
        body = _validated(cur, SemanticPatch, data)
        return RawCommand(
            flag=flag,
            environment=body.get("environmentKey") or None,
            project=options.project,
            shape="semantic",
            body=body,
        )
    link_id = cur.name("the flag link's id or key") if verb.name == "link-patch" else None
    data = _json(cur, "patch")
    cur.done()
    if verb.name == "merge-patch":
        # LaunchDarkly's "update with comment" shape, {"merge": {...}, "comment": "..."}, as typed
        # or made by `--comment`; a plain object otherwise.
        commented = isinstance(data, dict) and "merge" in data and set(data) <= {"merge", "comment"}
        if options.comment is not None:
            data = {**(data if commented else {"merge": data}), "comment": options.comment}
            commented = True
        body = _validated(cur, FlagMergePatch if commented else MergePatch, data)
        return RawCommand(flag=flag, project=options.project, shape="merge-patch", body=body)
    if verb.name == "link-patch":
        body = _validated(cur, JsonPatch, data)
        return RawCommand(flag=flag, project=options.project, shape="link-patch", body=body, link_id=link_id)
    wrapped = {"patch": data} if isinstance(data, list) else data
    if options.comment is not None and isinstance(wrapped, dict):
        wrapped["comment"] = options.comment
    body = _validated(cur, FlagJsonPatch, wrapped)
    return RawCommand(flag=flag, project=options.project, shape="json-patch", body=body)


# --- reserved verbs -----------------------------------------------------------------------------


def _reserved(verb: registry.Verb, cur: Cursor, options: _Options, source: str) -> ReservedCommand:
    name = verb.name
    flag: str | None = None
    env: str | None = None
    args: list[str] = []
    if name in ("approvals", "scheduled") and not cur.at_end():
        if name == "scheduled" and cur.accept("cancel"):
            args = ["cancel", cur.name("the scheduled change's id")]
        else:
            flag = _flag(cur)
            env = _env(cur, options, required=False)
    elif name == "history":
        flag = _flag(cur)
        env = _env(cur, options, required=False)
    elif name == "eval":
        flag = _flag(cur)
        env = _env(cur, options, required=True)
        args = [read_context(cur, source)]
    elif name == "remind":
        flag = _flag(cur)
        if not (cur.peek() is not None and cur.peek().is_("in", "at")):  # type: ignore[union-attr]
            env = _env(cur, options, required=True)
        args = _remind_args(cur, source)
    elif name == "reminders" and cur.accept("cancel"):
        args = ["cancel", cur.name("the reminder's id")]
    elif name == "link":
        flag = _flag(cur)
        if not cur.at_end():
            args = [cur.name("a title")]
    elif name == "link edit":
        flag = _flag(cur)
        args = [cur.name("the flag link's id or key")]
        while not cur.at_end():
            field_name = cur.next("title or description")
            if not field_name.is_("title", "description"):
                raise cur.error(f"expected title or description, got {describe_token(field_name)}")
            args += [field_name.text.lower(), cur.name(f"the new {field_name.text.lower()}")]
    elif name == "config":
        args = _config_args(cur)
    elif name in ("subscribe", "unsubscribe") and not cur.at_end():
        args = [cur.name("a flag, tag:<tag>, env:<env> or all")]
    elif name == "undo" and not cur.at_end():
        args = [cur.name("a change id")]
    elif name in ACCOUNT_VERBS and not cur.at_end():
        # Likely a pasted token: dropped unread, so no error message can ever quote it.
        return ReservedCommand(verb=name, args=(EXTRA_IGNORED,), project=options.project)
    cur.done()
    return ReservedCommand(verb=name, args=tuple(args), flag=flag, environment=env, project=options.project)


#: The account verbs take no arguments; anything after them is most likely a pasted token.
ACCOUNT_VERBS = frozenset({"link-account", "unlink-account"})
#: ``ReservedCommand.args`` of an account verb typed with extra text (which is never kept).
EXTRA_IGNORED = "extra-ignored"


def _account_command(source: str) -> ReservedCommand | None:
    """``link-account`` / ``unlink-account`` followed by anything, before the lexer sees the rest.

    What follows is most likely a pasted token: it is not tokenized (an unclosed quote in it would
    be quoted back in the lexer's error) and not kept; ``args`` only says that something was there.
    """
    words = source.split(None, 1)
    if not words or words[0].lower() not in ACCOUNT_VERBS:
        return None
    return ReservedCommand(verb=words[0].lower(), args=(EXTRA_IGNORED,) if len(words) > 1 else ())


#: Words people type for an account verb.
ACCOUNT_MEANT = {
    "connect": "link-account",
    "login": "link-account",
    "log-in": "link-account",
    "signin": "link-account",
    "sign-in": "link-account",
    "authenticate": "link-account",
    "auth": "link-account",
    "token": "link-account",
    "disconnect": "unlink-account",
    "logout": "unlink-account",
    "log-out": "unlink-account",
    "signout": "unlink-account",
    "sign-out": "unlink-account",
}


# Every word of every command is checked at the ack (bot.lifecycle.listeners.stays_in_listener):
# the same few words come again and again, so the answers are remembered (bounded).
@functools.lru_cache(maxsize=4096)
def account_verb_meant(word: str) -> str | None:
    """The account verb ``word`` is, means (``login``, ``connect``...) or nearly spells
    (``link-acount``: the grammar's own spelling guess), or None. What follows such a word is
    treated like a token: never read, quoted back or stored."""
    word = word.lower()
    if word in ACCOUNT_VERBS:
        return word
    if word in ACCOUNT_MEANT:
        return ACCOUNT_MEANT[word]
    if word in registry.VERB_INDEX or word in registry.VERB_HEADS or word in MEANT:
        return None
    if not any(_near(verb, word) for verb in ACCOUNT_VERBS):
        return None  # the closest verb cannot be an account verb: no need to rank all of them
    hint = suggest(word, list(registry.VERB_INDEX))
    meant = hint.split('"')[1] if hint else None
    return meant if meant in ACCOUNT_VERBS else None


def _near(verb: str, word: str) -> bool:
    """Whether ``suggest`` could pick ``verb`` for ``word``: its ratio reaches the cutoff, measured
    as ``difflib.get_close_matches`` measures it (every command's words go through this, at the ack)."""
    matcher = difflib.SequenceMatcher(None, verb, word)
    return (
        matcher.real_quick_ratio() >= SUGGEST_CUTOFF
        and matcher.quick_ratio() >= SUGGEST_CUTOFF
        and matcher.ratio() >= SUGGEST_CUTOFF
    )


def _refuse_near_account_verb(source: str) -> None:
    """``link-acount xoxp-…``: the guess, without reading (or quoting) what follows.

    Raises:
        CommandError: the first word nearly spells, or means, an account verb.
    """
    words = source.split(None, 1)
    meant = account_verb_meant(words[0]) if words else None
    if meant is None:
        return
    typed = words[0]
    rest = (
        " What you typed after it was not read, shown or kept: never paste a token into a command."
        if len(words) > 1
        else ""
    )
    raise CommandError(
        f'unknown command `{clipped(typed, 60)}`, did you mean "{meant}"? It takes nothing after it: '
        f"the form it opens asks for the token.{rest}",
        guess=(typed, meant),
    )


def _config_args(cur: Cursor) -> list[str]:
    """``config [<setting> [<value>...]]``: values may be words, quoted text, mentions and channels,
    kept in Slack's ``<@U…>`` / ``<#C…>`` form (``config reviewers production @bob @carol``)."""
    if cur.at_end():
        return []
    args = [cur.name("a setting")]
    while not cur.at_end():
        tok = cur.next("a value")
        if tok.kind == "mention":
            args.append(f"<@{tok.text}>")
        elif tok.kind == "channel":
            args.append(f"<#{tok.text}>")
        elif tok.kind in ("word", "string"):
            args.append(tok.text)
        elif not tok.is_punct(","):
            raise cur.error(f"expected a value for the setting, got {describe_token(tok)}")
    return args


def _remind_args(cur: Cursor, source: str) -> list[str]:
    when = cur.next("in <duration> or at <time>")
    if not when.is_("in", "at"):
        raise cur.error(f"expected `in <duration>` or `at <time>`, got {describe_token(when)}")
    rest = cur.tokens[cur.pos :]
    text: str | None = None
    if rest and rest[-1].kind == "string":
        text, rest = rest[-1].text, rest[:-1]
    if not rest:
        raise cur.error(f"`{when.text}` needs a {'duration' if when.is_('in') else 'time'}")
    if when.is_("in") and duration_seconds_of(rest) is None:
        # `in 2 weeks remove this flag`: the longest duration first, the words after it the text.
        cut = next(
            (
                k
                for k in range(len(rest) - 1, 0, -1)
                if not rest[k - 1].is_("and")
                and not rest[k - 1].is_punct(",")
                and duration_seconds_of(rest[:k]) is not None
            ),
            None,
        )
        if cut is None or text is not None:
            raise cur.error(f'"{source_slice(source, rest)}" is not a duration (try 2 hours, 3 days, 1w)')
        text = " ".join(free_text(source_slice(source, rest[cut:]), "the reminder", cur).split())
        rest = rest[:cut]
    cur.pos = len(cur.tokens)
    return [when.text.lower(), source_slice(source, rest), *([text] if text is not None else [])]
