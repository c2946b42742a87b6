"""What the person in the channel sees as Slack markup: every field of every outgoing call that
Slack renders as mrkdwn (where ``<@U…>``, ``<!channel>`` or ``<http…|…>`` would become a mention
or a link), and the markers a test plants in input to see whether any came back out raw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.bot.harness import Harness

# Planted in LaunchDarkly's documents and in typed text. None of them may ever come back as markup:
# each marker names something the bot never means to mention or link.
POISON = (
    "<!channel> <!here> <!everyone> <!subteam^SEVIL|@evil> <@UEVIL> <#CEVIL|evil> "
    "<http://evil.example|click> <mailto:evil@example.com|mail>"
)
BROADCASTS = ("<!channel", "<!here", "<!everyone")
MARKERS = (
    *BROADCASTS,
    "<!subteam^SEVIL",
    "<@UEVIL",
    "<#CEVIL",
    "<http://evil",
    "<mailto:evil",
)


def _mrkdwn(value: Any, *, top: bool = False) -> Iterator[str]:
    """The strings in ``value`` that Slack renders as mrkdwn: a message's ``text``, mrkdwn text
    objects anywhere in blocks or views; not plain_text (shown literally) nor ids and values."""
    if isinstance(value, list):
        for item in value:
            yield from _mrkdwn(item)
    elif isinstance(value, dict):
        if top and isinstance(value.get("text"), str):
            yield value["text"]
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        for key, item in value.items():
            if isinstance(item, list | dict) and key != "private_metadata":
                yield from _mrkdwn(item)


def _loads(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None


def rendered(bot: Harness) -> list[str]:
    """Every mrkdwn string the bot sent Slack: Web API calls and ``response_url`` posts."""
    out: list[str] = []
    for call in bot.slack.calls:
        params = dict(call.params)
        for key in ("blocks", "view"):
            if isinstance(params.get(key), str):
                params[key] = _loads(params[key])
        out += list(_mrkdwn(params, top=call.method.startswith("chat.")))
    for post in bot.slack.responses:
        out += list(_mrkdwn(post.payload, top=True))
    return out


def leaks(bot: Harness, markers: tuple[str, ...] = MARKERS) -> list[tuple[str, str]]:
    """(marker, text) for each planted marker that came back out as markup."""
    return [(m, t[:300]) for t in rendered(bot) for m in markers if m in t]
