"""LaunchDarkly's key syntax: what may stand as a project, environment, flag or segment key (and
an id) in a URL path.

A key starts with a letter or digit and holds only letters, digits, ``.``, ``_`` and ``-``
(LaunchDarkly's rule for keys; its ids are hex or UUIDs, which fit it too). Anything else (a
``/``, ``..``, ``?``, ``#``, a NUL, a space, non-ASCII) is refused before any request is made, so a
key can never name another endpoint and the key a policy checks is the key that is sent.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from commands.errors import CommandError

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")
_SHOWN = re.compile(r"[^A-Za-z0-9._\-/?#]")


class InvalidKey(CommandError):
    """A value that is not a LaunchDarkly key was about to go into a URL; nothing was sent."""


def is_key(value: object) -> bool:
    """Whether ``value`` is a LaunchDarkly key (or id)."""
    return isinstance(value, str) and KEY.fullmatch(value) is not None


def check_key(value: object, what: str = "key") -> str:
    """``value`` itself when it is a LaunchDarkly key.

    Raises:
        InvalidKey: it is not; the message shows it only with safe characters.
    """
    if is_key(value):
        assert isinstance(value, str)
        return value
    shown = _SHOWN.sub("?", str(value))[:60] or "(empty)"
    raise InvalidKey(
        f"`{shown}` is not a LaunchDarkly {what}: a key starts with a letter or digit and holds only "
        "letters, digits, `.`, `_` and `-`. Nothing was sent."
    )


def _key_field(value: str) -> str:
    if not is_key(value):
        raise ValueError("not a LaunchDarkly key")
    return value


Key = Annotated[str, AfterValidator(_key_field)]
"""A model field holding a LaunchDarkly key (a button's value is request data: its keys are checked)."""
