"""The lexer: command text (as Slack sends it, or as typed in a console) → tokens.

What it takes care of, so the grammar never has to:

* Smart quotes (“ ” ‘ ’, which phones and macOS type for you) are plain quotes.
* Slack's escaping: ``&lt;`` ``&gt;`` ``&amp;`` are the characters a person typed; a real ``<`` only
  opens Slack markup. ``<@U123>`` / ``<@U123|alice>`` is a ``mention`` token, ``<#C1|x>`` a
  ``channel`` token, ``<!here>`` a ``special`` token. Auto-links (``<https://x.io|x.io>``,
  ``<mailto:a@b.io|a@b.io>``) become the text that was typed (the label, else the address).
  A ``<`` that opens none of these is an ordinary character (a console user typing ``age < 18``).
* Quoted strings, ``"..."`` or ``'...'``, are ``string`` tokens: never keywords, never numbers.
  A quote opens a string only at the start of a token, so ``don't`` is one word. Inside double
  quotes ``\\"`` and ``\\\\`` escape.
* ``,`` ``;`` and ``->`` (also ``→``) are tokens of their own, outside quotes.
* A token starting with ``{`` or ``[`` is a ``json`` token running to its matching bracket
  (strings inside respected), for the raw escape hatches. Its nesting depth is bounded, so that
  decoding it can never exhaust the stack.

Every malformed input raises :class:`~commands.errors.CommandError`; nothing else can escape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from commands.errors import CommandError

TokenKind = Literal["word", "string", "json", "punct", "mention", "channel", "special"]

#: The deepest nesting a json token may have (LaunchDarkly bodies need a handful of levels).
MAX_JSON_DEPTH = 32

_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
_ENTITY = re.compile(r"&(?:lt|gt|amp);")
# Slack markup: user/channel/special mentions, and auto-linked addresses (with an optional label).
_MARKUP = re.compile(r"<([@#!][^<>\s|]+(?:\|[^<>]*)?)>|<((?:https?|mailto):[^<>\s|]+)(?:\|([^<>]*))?>")
_PUNCT = {",": ",", ";": ";", "→": "->"}
_WORD_END = {",", ";", "→"}


@dataclass(frozen=True)
class Token:
    """One token. ``text`` is the meaning (quotes and escapes removed); ``start``/``end`` index the
    normalised source, so a grammar can recover exact source slices (times, free text)."""

    kind: TokenKind
    text: str
    start: int
    end: int
    label: str | None = None  # the display name in <@U123|alice> or <#C1|general>

    @property
    def is_word(self) -> bool:
        """An unquoted word (the only kind that can be a keyword, number or operator)."""
        return self.kind == "word"

    def is_(self, *words: str) -> bool:
        """Whether this is an unquoted word equal to one of ``words`` (case-insensitive)."""
        return self.kind == "word" and self.text.lower() in words

    def is_punct(self, text: str) -> bool:
        """Whether this is the punctuation token ``text`` (``,`` ``;`` or ``->``)."""
        return self.kind == "punct" and self.text == text


_LONG_ARROW = re.compile(r"[\u2012\u2013\u2014\u2015\u2212](?=>|&gt;)")


def normalise(text: str) -> str:
    """Straighten smart quotes and turn Slack auto-links into the text that was typed.

    Args:
        text: raw command text.

    Returns:
        The text the lexer scans; token offsets refer to it.
    """

    def unlink(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(0)  # mentions stay markup: the lexer makes tokens of them
        address, label = match.group(2), match.group(3)
        if label:
            return label
        return address.removeprefix("mailto:")

    # `—>` and `–>`: a phone or an editor made the dash of `->` long (one character for one).
    return _MARKUP.sub(unlink, _LONG_ARROW.sub("-", text.translate(_SMART_QUOTES)))


def tokenize(text: str) -> list[Token]:
    """Split command text into tokens.

    Args:
        text: the command text (Slack-escaped or plain).

    Returns:
        The tokens, in order.

    Raises:
        CommandError: an unclosed quote or bracket, or JSON nested too deeply.
    """
    source = normalise(text)
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token("punct", _PUNCT[ch], i, i + 1))
            i += 1
        elif source.startswith("->", i):
            tokens.append(Token("punct", "->", i, i + 2))
            i += 2
        elif source.startswith("-&gt;", i):
            tokens.append(Token("punct", "->", i, i + 5))
            i += 5
        elif ch in "\"'":
            value, i2 = _scan_string(source, i)
            tokens.append(Token("string", value, i, i2))
            i = i2
        elif ch in "{[":
            i2 = _scan_json(source, i)
            tokens.append(Token("json", _unescape(source[i:i2]), i, i2))
            i = i2
        elif ch == "<" and (markup := _MARKUP.match(source, i)) is not None:
            tokens.append(_markup_token(markup))
            i = markup.end()
        else:
            i2 = _scan_word(source, i)
            tokens.append(Token("word", _unescape(source[i:i2]), i, i2))
            i = i2
    return _unticked(tokens)


def _unticked(tokens: list[Token]) -> list[Token]:
    """Slack's code formatting around words is not part of them: `` `new-checkout` `` is
    ``new-checkout``, and `` `off new-checkout` `` is two words (a span's first word loses its
    opening backticks, its last word the closing ones). A lone backtick is left alone; offsets
    are kept, so free text (a name, a comment) keeps the backticks as typed."""
    out = list(tokens)
    i = 0
    while i < len(out):
        tok = out[i]
        if tok.kind != "word" or not tok.text.startswith("`") or tok.text.strip("`") == "":
            i += 1
            continue
        j = next((k for k in range(i, len(out)) if out[k].kind == "word" and out[k].text.endswith("`")), None)
        if j is None or (j == i and len(tok.text) < 2):
            i += 1
            continue
        first = out[i]
        lead = len(first.text) - len(first.text.lstrip("`"))
        out[i] = Token(first.kind, first.text[lead:], first.start, first.end, first.label)
        last = out[j]
        trail = len(last.text) - len(last.text.rstrip("`"))
        out[j] = Token(last.kind, last.text[: len(last.text) - trail], last.start, last.end, last.label)
        i = j + 1
    return [t for t in out if t.kind != "word" or t.text]


def _markup_token(match: re.Match[str]) -> Token:
    body = match.group(1)
    ident, _, label = body[1:].partition("|")
    kind: TokenKind = {"@": "mention", "#": "channel"}.get(body[0], "special")  # type: ignore[assignment]
    return Token(kind, ident, match.start(), match.end(), label or None)


def _scan_word(source: str, i: int) -> int:
    n = len(source)
    j = i
    while j < n and source[j] not in _WORD_END and not source[j].isspace():
        if source.startswith("->", j) or source.startswith("-&gt;", j):
            break
        if (entity := _ENTITY.match(source, j)) is not None:
            j = entity.end()  # its ';' does not end the word
            continue
        if source[j] == "<" and j > i and _MARKUP.match(source, j):
            break
        j += 1
    return max(j, i + 1)


def scan_string(source: str, i: int) -> tuple[str, int]:
    """The quoted string opening at ``source[i]`` (a quote inside a word, which the lexer leaves
    alone: ``name="Ada Lovelace"``) and the index just past its closing quote.

    Raises:
        CommandError: the quote is not closed.
    """
    return _scan_string(source, i)


def _scan_string(source: str, i: int) -> tuple[str, int]:
    quote = source[i]
    out: list[str] = []
    j = i + 1
    while j < len(source):
        ch = source[j]
        if ch == "\\" and quote == '"' and j + 1 < len(source) and source[j + 1] in '"\\':
            out.append(source[j + 1])
            j += 2
            continue
        if ch == quote:
            return _unescape("".join(out)), j + 1
        out.append(ch)
        j += 1
    raise CommandError(f"unclosed quote: {source[i : i + 30]}…  (close it with {quote})")


def _scan_json(source: str, i: int) -> int:
    closing = {"{": "}", "[": "]"}
    stack: list[str] = []
    j = i
    in_string = False
    while j < len(source):
        ch = source[j]
        if in_string:
            if ch == "\\":
                j += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in closing:
            stack.append(closing[ch])
            if len(stack) > MAX_JSON_DEPTH:
                raise CommandError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                raise CommandError(f"mismatched {ch!r} in JSON at character {j}")
            if not stack:
                return j + 1
        j += 1
    raise CommandError("unclosed JSON: a { or [ has no matching } or ]")


def _unescape(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


def source_slice(source: str, tokens: list[Token]) -> str:
    """The normalised source text spanned by ``tokens`` (first start to last end), stripped."""
    if not tokens:
        return ""
    return _unescape(source[tokens[0].start : tokens[-1].end]).strip()
