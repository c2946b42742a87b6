"""Shared pieces of the grammar: a token cursor, and the phrases many verbs use.

Phrases (the help topics ``variations``, ``clauses``, ``serving`` describe them for people):

* variation: ``#2`` (1-based position), a value (``true``, ``blue``, ``20``) or a name
  (``Enabled``, ``"New pricing"``); quoted text matches only string values and names.
* rule: ``2`` (1-based position) or a description (``"Beta testers"``, or one bare word).
* clause: ``2`` (1-based position within its rule) or an attribute (``country``).
* clause spec: ``[<kind>.]<attribute> [not] <op> <value>[,<value>...]`` or
  ``[not] in segment <segment>[,<segment>...]``. Values: numbers (``2``, ``-1.5``) and
  ``true``/``false`` are typed; anything quoted, or anything else, is a string (``"2"``).
* serving: a variation, or ``<pct>% <variation> ... [by <attribute>] [kind <context-kind>]``.

Operators are LaunchDarkly's own names, case-sensitive (``in``, ``endsWith``, ``segmentMatch``...),
or the friendly aliases in :data:`OP_ALIASES`.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from commands.errors import CommandError
from commands.instructions import CLAUSE_OPS, TOTAL_WEIGHT
from commands.intents import (
    ClauseRef,
    ClauseSpec,
    ClauseValue,
    Rollout,
    RuleRef,
    ServeVariation,
    Serving,
    ValueLiteral,
    VariationRef,
    Weight,
)
from commands.lexer import Token, source_slice

#: friendly operator -> (LaunchDarkly operator, negate)
OP_ALIASES: dict[str, tuple[str, bool]] = {
    "=": ("in", False),
    "==": ("in", False),
    "is": ("in", False),
    "one-of": ("in", False),
    "!=": ("in", True),
    "not-in": ("in", True),
    "ends-with": ("endsWith", False),
    "starts-with": ("startsWith", False),
    "~": ("matches", False),
    "=~": ("matches", False),
    "<": ("lessThan", False),
    "<=": ("lessThanOrEqual", False),
    ">": ("greaterThan", False),
    ">=": ("greaterThanOrEqual", False),
    "semver=": ("semVerEqual", False),
    "semver==": ("semVerEqual", False),
    "semver<": ("semVerLessThan", False),
    "semver>": ("semVerGreaterThan", False),
}
#: The canonical spelling of each operator in command text.
OP_SPELLING: dict[str, str] = {
    "in": "in",
    "endsWith": "ends-with",
    "startsWith": "starts-with",
    "matches": "matches",
    "contains": "contains",
    "lessThan": "<",
    "lessThanOrEqual": "<=",
    "greaterThan": ">",
    "greaterThanOrEqual": ">=",
    "before": "before",
    "after": "after",
    "segmentMatch": "segmentMatch",
    "semVerEqual": "semver=",
    "semVerLessThan": "semver<",
    "semVerGreaterThan": "semver>",
}

_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,20})(?:\.\d{1,20})?(?:[eE][+-]?\d{1,3})?")
_POSITION = re.compile(r"[0-9]{1,6}")
_INDEX = re.compile(r"#([0-9]{1,6})")
_PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)%")

M = TypeVar("M", bound=BaseModel)


class Cursor:
    """Tokens of one command segment, read left to right; errors carry the verb's usage."""

    def __init__(self, tokens: list[Token], usage: str | None = None, source: str = "") -> None:
        self.tokens = tokens
        self.pos = 0
        self.usage = usage
        self.source = source  # the normalised command text the tokens index (free text)
        # The tokens ``rest_text`` read as unquoted free text, and what it was (``the new name``):
        # a schedule or an option right after them could be part of the text (``commands.parse``).
        self.free_tokens: list[Token] = []
        self.free_what = ""

    def error(self, message: str) -> CommandError:
        """A CommandError with this verb's usage."""
        return CommandError(message, self.usage)

    def peek(self, offset: int = 0) -> Token | None:
        """The token ``offset`` ahead, or None past the end."""
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def at_end(self) -> bool:
        """Whether every token was read."""
        return self.pos >= len(self.tokens)

    def next(self, what: str) -> Token:
        """Read one token; ``what`` names it in the error when there is none."""
        tok = self.peek()
        if tok is None:
            raise self.error(f"missing {what}")
        self.pos += 1
        return tok

    def accept(self, *words: str) -> bool:
        """Read the next token if it is one of the unquoted ``words``."""
        tok = self.peek()
        if tok is not None and tok.is_(*words):
            self.pos += 1
            return True
        return False

    def accept_punct(self, text: str) -> bool:
        """Read the next token if it is the punctuation ``text``."""
        tok = self.peek()
        if tok is not None and tok.is_punct(text):
            self.pos += 1
            return True
        return False

    def expect(self, word: str, what: str | None = None) -> None:
        """Read the keyword ``word`` or fail."""
        if not self.accept(word):
            raise self.error(
                f"expected `{word}`{' ' + what if what else ''}, got {describe_token(self.peek())}"
            )

    def expect_arrow(self) -> None:
        """Read ``->`` (or ``to``) or fail."""
        if not (self.accept_punct("->") or self.accept("to")):
            raise self.error(f"expected `->` and a variation, got {describe_token(self.peek())}")

    def name(self, what: str, *, allow_empty: bool = False) -> str:
        """Read a key or free text: an unquoted word or a quoted string (``""`` if allowed)."""
        tok = self.next(what)
        if tok.kind not in ("word", "string") or (tok.text == "" and not allow_empty):
            raise self.error(f"expected {what}, got {describe_token(tok)}")
        return tok.text

    def rest_text(self, what: str, *, allow_empty: bool = False) -> str:
        """Free text running to the end of the segment: one quoted string alone (``""`` if allowed),
        or every remaining token as it was typed (``Bännér cölör 🎨``), whitespace collapsed.

        Raises:
            CommandError: nothing is left, or the text holds a control character (a NUL).
        """
        rest = self.tokens[self.pos :]
        if (len(rest) == 1 and rest[0].kind == "string") or not self.source or not rest:
            return free_text(self.name(what, allow_empty=allow_empty), what, self)
        text = " ".join(source_slice(self.source, rest).split())
        self.pos = len(self.tokens)
        self.free_tokens, self.free_what = rest, what
        return free_text(text, what, self)

    def names(self, what: str) -> tuple[str, ...]:
        """Read ``name[, name...]``."""
        items = [self.name(what)]
        while self.accept_punct(","):
            items.append(self.name(what))
        return tuple(items)

    def done(self) -> None:
        """Fail if tokens are left over."""
        if not self.at_end():
            raise self.error(f"unexpected {describe_token(self.peek())}")


def free_text(text: str, what: str, cur: Cursor) -> str:
    """``text`` itself when it holds no control character but line breaks and tabs (a NUL cannot be
    stored or sent)."""
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text):
        raise cur.error(f"{what} holds a control character; type it without one")
    return text


#: The most of what was typed an answer quotes back (a 2,000-character word is not echoed whole).
ECHO_LIMIT = 200


def clipped(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` as an answer quotes it back: at most ``limit`` characters, the rest as "…"."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: A Slack user id as the lexer gives it from ``<@U123>`` / ``<@U123|name>``.
_USER_ID = re.compile(r"[UW][A-Z0-9_]{1,30}")


def mention_key(user_id: str) -> str:
    """The placeholder key of a mentioned person (``<@U0BOB>``), replaced by their email before
    the command is resolved (``bot.lifecycle.people``); rendered back as the bare mention."""
    if _USER_ID.fullmatch(user_id) is None:
        raise CommandError(f"<@{user_id[:40]}> is not a Slack user")
    return f"<@{user_id}>"


def mentioned_user(key: str) -> str | None:
    """The user id in a mention placeholder key, or None for any other key."""
    if key.startswith("<@") and key.endswith(">") and _USER_ID.fullmatch(key[2:-1]):
        return key[2:-1]
    return None


def describe_token(tok: Token | None) -> str:
    """How an error message names a token."""
    if tok is None:
        return "the end of the command"
    if tok.kind == "mention":
        return f"the mention <@{tok.text}>"
    if tok.kind == "channel":
        return f"the channel <#{tok.text}>"
    if tok.kind == "special":
        return f"<!{tok.text}>"
    if tok.kind == "json":
        return "a JSON value"
    shown = tok.text if len(tok.text) <= 40 else tok.text[:40] + "…"
    return f'"{shown}"'


def build(model: type[M], cur: Cursor, **fields: Any) -> M:
    """Build an intent model, turning its validation failure into a CommandError."""
    try:
        return model(**fields)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise cur.error(reasons) from None


#: How close (difflib's ratio) a choice must be for ``suggest`` to offer it.
SUGGEST_CUTOFF = 0.6


def suggest(word: str, choices: list[str]) -> str:
    """``, did you mean "x"?`` when a choice is close to ``word``, else empty."""
    same = [c for c in choices if c.casefold() == word.casefold()]
    close = same or difflib.get_close_matches(word, choices, n=1, cutoff=SUGGEST_CUTOFF)
    return f', did you mean "{close[0]}"?' if close else ""


# --- values and references ----------------------------------------------------------------------


def is_number_word(text: str) -> bool:
    """Whether an unquoted word is read as a number."""
    return _NUMBER.fullmatch(text) is not None and math.isfinite(float(text))


def typed_value(tok: Token, cur: Cursor) -> ClauseValue:
    """A clause value: numbers and true/false typed when unquoted, strings otherwise."""
    if tok.kind == "string":
        return tok.text
    if tok.kind != "word":
        raise cur.error(f"expected a value, got {describe_token(tok)}")
    if tok.text in ("true", "false"):
        return tok.text == "true"
    if is_number_word(tok.text):
        number = float(tok.text)
        return number if any(c in tok.text for c in ".eE") else int(tok.text)
    return tok.text


def values(cur: Cursor) -> tuple[ClauseValue, ...]:
    """``value[, value...]``."""
    items = [typed_value(cur.next("a value"), cur)]
    while cur.accept_punct(","):
        items.append(typed_value(cur.next("a value after ','"), cur))
    return tuple(items)


def variation(cur: Cursor) -> VariationRef:
    """A variation reference: ``#n``, a value or a name."""
    tok = cur.next("a variation (a value, a name, or #n)")
    if tok.kind == "string":
        return VariationRef(text=tok.text, quoted=True)
    if tok.kind != "word":
        raise cur.error(f"expected a variation, got {describe_token(tok)}")
    if m := _INDEX.fullmatch(tok.text):
        if int(m.group(1)) < 1:
            raise cur.error("variations count from #1")
        return VariationRef(index=int(m.group(1)))
    return VariationRef(text=tok.text)


def value_literal(cur: Cursor) -> ValueLiteral:
    """A new variation value: a word, a quoted string or a JSON object/array."""
    tok = cur.next("a value")
    if tok.kind == "string":
        return ValueLiteral(text=tok.text, form="string")
    if tok.kind == "json":
        return ValueLiteral(text=tok.text, form="json")
    if tok.kind != "word":
        raise cur.error(f"expected a value, got {describe_token(tok)}")
    return ValueLiteral(text=tok.text, form="word")


def rule_ref(cur: Cursor) -> RuleRef:
    """``2`` or ``"Beta testers"``."""
    tok = cur.next("a rule (its position, or its description in quotes)")
    if tok.kind == "word" and _POSITION.fullmatch(tok.text):
        if int(tok.text) < 1:
            raise cur.error("rules count from 1")
        return RuleRef(position=int(tok.text))
    if tok.kind not in ("word", "string") or not tok.text:
        raise cur.error(f"expected a rule, got {describe_token(tok)}")
    return RuleRef(description=tok.text)


def clause_ref(cur: Cursor) -> ClauseRef:
    """``2`` or ``country``."""
    tok = cur.next("a clause (its position, or its attribute)")
    if tok.kind == "word" and _POSITION.fullmatch(tok.text):
        if int(tok.text) < 1:
            raise cur.error("clauses count from 1")
        return ClauseRef(position=int(tok.text))
    if tok.kind not in ("word", "string") or not tok.text:
        raise cur.error(f"expected a clause, got {describe_token(tok)}")
    return ClauseRef(attribute=tok.text)


def on_off(cur: Cursor) -> bool:
    """``on`` or ``off`` (also true/false, yes/no)."""
    tok = cur.next("on or off")
    if tok.is_("on", "true", "yes"):
        return True
    if tok.is_("off", "false", "no"):
        return False
    raise cur.error(f"expected on or off, got {describe_token(tok)}")


# --- clauses ------------------------------------------------------------------------------------


def _is_operator(tok: Token) -> bool:
    return tok.kind == "word" and (tok.text in CLAUSE_OPS or tok.text in OP_ALIASES)


def _operator(cur: Cursor) -> tuple[str, bool]:
    tok = cur.next("an operator (in, ends-with, >=, ...)")
    if tok.kind == "word":
        if tok.text in CLAUSE_OPS:
            return tok.text, False
        if tok.text in OP_ALIASES:
            return OP_ALIASES[tok.text]
    choices = [*CLAUSE_OPS, *OP_ALIASES]
    raise cur.error(
        f"unknown operator {describe_token(tok)}{suggest(tok.text, choices)} "
        f"(operators: {', '.join(CLAUSE_OPS)}; or {' '.join(OP_ALIASES)})"
    )


def clause(cur: Cursor) -> ClauseSpec:
    """One clause spec (see the module docstring)."""
    negate = cur.accept("not")
    first, second = cur.peek(), cur.peek(1)
    segment_form = (
        first is not None
        and second is not None
        and (
            (first.is_("in") and second.is_("segment"))
            or (first.is_("segment") and not second.is_("not") and not _is_operator(second))
        )
    )
    if segment_form:
        if cur.accept("in"):
            cur.expect("segment")
        else:
            cur.expect("segment")
        return build(
            ClauseSpec, cur, attribute="segmentMatch", op="segmentMatch", values=values(cur), negate=negate
        )
    tok = cur.next("a clause: <attribute> <operator> <values>")
    if tok.kind not in ("word", "string") or not tok.text:
        raise cur.error(f"expected an attribute, got {describe_token(tok)}")
    context_kind: str | None = None
    attribute = tok.text
    if tok.kind == "word" and "." in tok.text:
        context_kind, _, attribute = tok.text.partition(".")
        if not context_kind or not attribute:
            raise cur.error(f'"{tok.text}": write <context-kind>.<attribute>, like organization.tier')
    if cur.accept("not"):
        if negate:
            raise cur.error("`not` twice in one clause")
        negate = True
    op, op_negates = _operator(cur)
    if op_negates and negate:
        raise cur.error("`not` with a negative operator: say it once")
    return build(
        ClauseSpec,
        cur,
        attribute=attribute,
        op=op,
        values=values(cur),
        negate=negate or op_negates,
        context_kind=context_kind,
    )


def clauses(cur: Cursor) -> tuple[ClauseSpec, ...]:
    """``<clause> [and <clause>]...``."""
    items = [clause(cur)]
    while cur.accept("and"):
        items.append(clause(cur))
    return tuple(items)


# --- serving ------------------------------------------------------------------------------------


def is_percent(tok: Token | None) -> bool:
    """Whether a token is a percentage like ``10%`` or ``33.333%``."""
    return tok is not None and tok.kind == "word" and _PERCENT.fullmatch(tok.text) is not None


def weight_of(text: str) -> int:
    """``"33.333%"`` -> 33333 (thousandths of a percent)."""
    m = _PERCENT.fullmatch(text)
    assert m is not None  # callers check is_percent first
    return int(Decimal(m.group(1)) * 1000)


def serving(cur: Cursor) -> Serving:
    """A variation, or a percentage rollout with optional bucket-by and context kind."""
    if not is_percent(cur.peek()):
        return ServeVariation(variation=variation(cur))
    weights: list[Weight] = []
    while is_percent(cur.peek()):
        pct = cur.next("a percentage")
        ref = variation(cur)
        if any(w.variation == ref for w in weights):
            raise cur.error("a variation appears twice in the rollout")
        weights.append(build(Weight, cur, variation=ref, weight=weight_of(pct.text)))
    total = sum(w.weight for w in weights)
    if total != TOTAL_WEIGHT:
        raise cur.error(f"the rollout adds up to {total / 1000:g}%; it must be exactly 100%")
    bucket_by: str | None = None
    context_kind: str | None = None
    while True:
        if bucket_by is None and cur.accept("by"):
            bucket_by = cur.name("an attribute to bucket by")
        elif context_kind is None and cur.accept("kind"):
            context_kind = cur.name("a context kind")
        else:
            break
    return build(Rollout, cur, weights=tuple(weights), bucket_by=bucket_by, context_kind=context_kind)


def sections(cur: Cursor, handlers: dict[str, Callable[[], None]], stop: str | None = None) -> None:
    """Read keyword-introduced sections in any order, each at most once, until the end.

    Args:
        cur: the cursor.
        handlers: keyword -> function reading the rest of that section.
        stop: a keyword that ends the sections (left unread).

    Raises:
        CommandError: an unknown or repeated section.
    """
    seen: set[str] = set()
    while not cur.at_end():
        tok = cur.peek()
        key = tok.text.lower() if tok is not None and tok.kind == "word" else ""
        if stop is not None and key == stop:
            return
        if key not in handlers:
            raise cur.error(f"unexpected {describe_token(tok)}; expected one of: {', '.join(handlers)}")
        if key in seen:
            raise cur.error(f"`{key}` given twice")
        seen.add(key)
        cur.pos += 1
        handlers[key]()


#: Words naming a day that may come before ``at`` in a schedule (``tomorrow at 9am``).
DAY_WORDS = (
    "today",
    "tonight",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
)
