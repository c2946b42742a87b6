"""What looks like a pasted secret in command text: a Slack token, a LaunchDarkly access token, SDK
or mobile key, another service's token, or a long random-looking string.

The slash command's listener refuses a command holding one before anything is written (the
durable inbox stores commands before the ack), and nothing quotes it back: a token pasted into the
wrong command is never stored, logged or shown. The shapes are specific enough that flag keys,
context keys (UUIDs with dashes included) and free text are not taken for one.
"""

from __future__ import annotations

import re

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SHAPES = re.compile(
    "|".join(
        (
            r"xox[a-z]-[A-Za-z0-9-]{6,}",  # Slack bot, user, app-level... tokens
            r"xapp-[A-Za-z0-9-]{6,}",
            rf"(?:api|sdk|mob)-{_UUID}",  # LaunchDarkly access tokens, SDK keys, mobile keys
            r"gh[pousr]_[A-Za-z0-9]{20,}",
            r"github_pat_[A-Za-z0-9_]{20,}",
            r"(?:AKIA|ASIA)[0-9A-Z]{16}",
        )
    ),
    re.IGNORECASE,
)
#: A run of the base64 (or base64url) alphabet at least this long, mixing upper and lower case
#: and digits, is taken for a random secret (no human-chosen key looks like that).
LONG_RANDOM = 40
_BASE64_RUN = re.compile(rf"[A-Za-z0-9+/_=-]{{{LONG_RANDOM},}}")
#: A run of this many hex digits or more, mixing digits and letters, is a hex secret (a signing
#: secret, a client secret); a UUID has dashes, so it is not one.
LONG_HEX = 32
_HEX_RUN = re.compile(rf"(?<![0-9A-Za-z])[0-9a-fA-F]{{{LONG_HEX},}}(?![0-9A-Za-z])")


def _mixed(run: str) -> bool:
    return sum(ch.isdigit() for ch in run) >= 4 and sum(ch.isalpha() for ch in run) >= 4


def _random_looking(run: str) -> bool:
    letters = sum(ch.isalpha() for ch in run)
    return (
        any(ch.isupper() for ch in run)
        and any(ch.islower() for ch in run)
        and sum(ch.isdigit() for ch in run) >= 4
        and letters >= len(run) // 3
        and "--" not in run
    )


def looks_like_secret(text: str) -> bool:
    """Whether ``text`` holds something shaped like a token or key (see the module docstring)."""
    if _SHAPES.search(text) or any(_mixed(run) for run in _HEX_RUN.findall(text)):
        return True
    return any(_random_looking(run) for run in _BASE64_RUN.findall(text))
