"""Evaluation contexts: as typed after ``eval <flag> <env>``, and as LaunchDarkly's JSON.

::

    user:alice country=US plan=pro     {"kind": "user", "key": "alice", "country": "US", "plan": "pro"}
    alice                              {"kind": "user", "key": "alice"}       (no kind: a user)
    org:acme tier=3 beta=true          {"kind": "org", "key": "acme", "tier": 3, "beta": true}
    user:sam email=sam@example.com organization:acme tier=3
        {"kind": "multi", "user": {"key": "sam", "email": "sam@example.com"},
         "organization": {"key": "acme", "tier": 3}}

Each ``<kind>:<key>`` starts a context; the ``<attribute>=<value>`` pairs after it are its
attributes. Values are typed like clause values (``commands.grammar.typed_value``): unquoted
numbers and ``true``/``false`` are numbers and booleans, anything else (and anything quoted) a
string; ``a,b`` is a list; ``name="Ada Lovelace"`` (or ``name= "Ada Lovelace"``) quotes a value with
spaces, and ``user:"key with spaces"`` a key.

:func:`individual_contexts` reads LaunchDarkly's JSON back (single-kind, ``multi``, or an old-style
user without ``kind``) and says what is wrong with a malformed one; the sandbox answers 400 with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from commands.grammar import Cursor, describe_token, typed_value
from commands.lexer import Token, scan_string

#: A context kind, as LaunchDarkly allows it (``kind`` and ``multi`` are not kinds).
KIND = re.compile(r"[A-Za-z0-9._-]{1,256}")
#: Attributes a context does not take as ``name=value``: its kind and key are said as ``kind:key``.
RESERVED_ATTRIBUTES = frozenset({"kind", "key", "_meta"})
_START = "start the context with its key, like user:alice (or org:acme)"

Individual = dict[str, Any]


class ContextError(ValueError):
    """A context LaunchDarkly would refuse; the message says why, in words."""


def read_context(cur: Cursor, source: str) -> str:
    """Read a context to the end of the command; return it as LaunchDarkly's JSON.

    Args:
        cur: the cursor, after the flag and the environment.
        source: the normalised command text (quoted values are read from it).

    Returns:
        The context as compact JSON text (``ReservedCommand.args`` holds text).

    Raises:
        CommandError: no context, or one LaunchDarkly would refuse (with the verb's usage).
    """
    parts: dict[str, Individual] = {}
    current: Individual | None = None
    if cur.at_end():
        raise cur.error(f"whose evaluation? {_START}, then attributes: country=US plan=pro")
    while not cur.at_end():
        tok = cur.next("a context")
        if tok.kind == "string" and current is None:
            current = _start(cur, parts, "user", tok.text)
            continue
        if tok.kind != "word":
            raise cur.error(f"expected <kind>:<key> or <attribute>=<value>, got {describe_token(tok)}")
        colon, equals = tok.text.find(":"), tok.text.find("=")
        if equals > 0 and (colon < 0 or equals < colon):
            if current is None:
                raise cur.error(f'"{tok.text}": {_START}, then its attributes')
            name = tok.text[:equals]
            _attribute(cur, current, name, _value(cur, tok, source, equals, f"a value for {name}"))
        elif colon >= 0:
            kind = tok.text[:colon]
            key = _value(cur, tok, source, colon, f"the key of the {kind or '?'} context", typed=False)
            if not isinstance(key, str):
                raise cur.error(f"one key per context: `{kind}:<key>`, then its attributes")
            current = _start(cur, parts, kind, key)
        elif current is None:
            current = _start(cur, parts, "user", tok.text)
        else:
            raise cur.error(
                f"expected <attribute>=<value> or <kind>:<key>, got {describe_token(tok)} "
                '(quote a value with spaces: name="Ada Lovelace")'
            )
    return json.dumps(_body(parts), separators=(",", ":"))


def _start(cur: Cursor, parts: dict[str, Individual], kind: str, key: str) -> Individual:
    if not KIND.fullmatch(kind) or kind in ("kind", "multi"):
        raise cur.error(f'"{kind}" is not a context kind (letters, digits, `.`, `_` and `-`): user:alice')
    if not key:
        raise cur.error(f"`{kind}:` needs a key: {kind}:<key>")
    if kind in parts:
        raise cur.error(f"two {kind} contexts: a context has one key per kind")
    parts[kind] = {"key": key}
    return parts[kind]


def _attribute(cur: Cursor, context: Individual, name: str, value: Any) -> None:
    if name in RESERVED_ATTRIBUTES:
        raise cur.error(f"`{name}` is not an attribute you set: write the context as <kind>:<key>")
    if name in context:
        raise cur.error(f"`{name}` given twice")
    if name == "anonymous" and not isinstance(value, bool):
        raise cur.error("anonymous is true or false")
    if name == "name" and not isinstance(value, str):
        value = json.dumps(value)
    context[name] = value


def _value(cur: Cursor, tok: Token, source: str, at: int, what: str, *, typed: bool = True) -> Any:
    """The value after ``=`` (or the key after ``:``) at ``tok.text[at]``: typed (unless ``typed``
    is False: a key is text as written), quoted, or a list."""

    def read(token: Token) -> Any:
        if not typed:
            if token.kind not in ("word", "string"):
                raise cur.error(f"expected {what}, got {describe_token(token)}")
            return token.text
        return typed_value(token, cur)

    rest = tok.text[at + 1 :]
    if rest[:1] in ('"', "'"):
        # The lexer opens a quote only at the start of a token: read the quoted text from the source.
        start = source.index(tok.text[at], tok.start) + 1
        text, end = scan_string(source, start)
        while not cur.at_end() and cur.tokens[cur.pos].start < end:
            cur.pos += 1
        first: Any = text
    elif rest:
        first = read(Token("word", rest, tok.start, tok.end))
    else:
        nxt = cur.peek()
        spaced_pair = nxt is not None and nxt.kind == "word" and ("=" in nxt.text or ":" in nxt.text)
        if nxt is None or nxt.kind not in ("word", "string") or not nxt.text or spaced_pair:
            raise cur.error(f"missing {what}")
        cur.pos += 1
        first = read(nxt)
    if not cur.accept_punct(","):
        return first
    items = [first]
    while True:
        nxt = cur.next(f"a value after ',' in {what}")
        items.append(read(nxt))
        if not cur.accept_punct(","):
            return items


def _body(parts: dict[str, Individual]) -> dict[str, Any]:
    if len(parts) == 1:
        ((kind, attributes),) = parts.items()
        return {"kind": kind, **attributes}
    return {"kind": "multi", **parts}


def context_of(text: str) -> dict[str, Any]:
    """The context JSON a parsed ``eval`` carries (``ReservedCommand.args[0]``)."""
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ContextError("a context is a JSON object")
    return body


def individual_contexts(body: Any) -> dict[str, Individual]:
    """The individual contexts of a context, by kind (one for a single-kind context).

    Args:
        body: a context as LaunchDarkly's JSON: ``{"kind": ..., "key": ...}``, ``{"kind": "multi",
            <kind>: {...}}``, or an old-style user (no ``kind``).

    Returns:
        kind -> the attributes of that context (``key`` included, ``kind`` left out).

    Raises:
        ContextError: the body is not a context LaunchDarkly evaluates.
    """
    if not isinstance(body, Mapping):
        raise ContextError("a context is a JSON object with a kind and a key")
    kind = body.get("kind", "user")
    if kind == "multi":
        found = {k: _individual(k, v) for k, v in body.items() if k != "kind"}
        if not found:
            raise ContextError("a multi-context needs at least one context")
        return found
    if not isinstance(kind, str):
        raise ContextError("a context's kind is a string")
    return {kind: _individual(kind, {k: v for k, v in body.items() if k != "kind"})}


def _individual(kind: str, attributes: Any) -> Individual:
    if not KIND.fullmatch(kind) or kind == "kind":
        raise ContextError(f'"{kind[:40]}" is not a context kind')
    if not isinstance(attributes, Mapping):
        raise ContextError(f"the {kind} context is not a JSON object")
    key = attributes.get("key")
    if not isinstance(key, str) or not key:
        raise ContextError(f"the {kind} context has no key")
    if "anonymous" in attributes and not isinstance(attributes["anonymous"], bool):
        raise ContextError(f"the {kind} context's anonymous is not true or false")
    return dict(attributes)


def context_text(contexts: Mapping[str, Individual], limit: int = 6) -> str:
    """A context as people read it: ``user alice (country=US, plan=pro) + org acme (tier=3)``."""

    def one(kind: str, attributes: Individual) -> str:
        shown = [f"{name}={_shown(value)}" for name, value in attributes.items() if name != "key"]
        more = f", and {len(shown) - limit} more" if len(shown) > limit else ""
        extra = f" ({', '.join(shown[:limit])}{more})" if shown else ""
        return f"{kind} {attributes.get('key')}{extra}"

    return " + ".join(one(kind, attributes) for kind, attributes in contexts.items())


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
