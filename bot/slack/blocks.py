"""Block Kit builders: pure functions from view models to ``(text, blocks)``.

Nothing here talks to Slack; ``bot.slack.messenger`` sends what these return. Every builder keeps within
Slack's limits (section text 3,000 characters, 50 blocks, button text 75, confirm text 300): a card
with many rules or targets summarises instead of overflowing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from commands.summary import Fact, FactChange

Blocks = list[dict[str, Any]]

SECTION_LIMIT = 2900  # under Slack's 3,000, leaving room for "…"
MAX_FACT_LINES = 12
MAX_FACT_CHARS = 280

# action_id of each button; the value is always the change id.
APPLY = "change_apply"
APPLY_ANYWAY = "change_apply_anyway"
CANCEL = "change_cancel"
REQUEST_APPROVAL = "change_request_approval"
SEND_AGAIN = "change_send_again"
PAUSE = "change_pause"  # a ramp: delete the steps not yet run (bot.lifecycle.ramps)
PROPOSE_AGAIN = "change_propose_again"  # an expired card: the same command, previewed afresh
UNDO = "undo_change"  # not change_*, the guardrails listener handles it
# History (bot.history): a button naming the flag (its value: JSON project, flag, env), and the
# change card's menu (its option's value: the change id; ``details:<id>`` for Details).
HISTORY = "history_flag"
HISTORY_MENU = "history_menu"
# A guess ("Did you mean `new-checkout`?"): a button whose value is the corrected command text,
# run as whoever clicks it, exactly as if they had typed it (bot.lifecycle.listeners).
PROPOSE_GUESS = "propose_guess"
#: Slack's limit on a button's value.
BUTTON_VALUE_LIMIT = 2000
DETAILS_PREFIX = "details:"
MAX_LISTED = 10  # items of a long list a card shows before "+N more"

BUTTON_TEXT = {
    APPLY: "Apply",
    APPLY_ANYWAY: "Apply anyway",
    CANCEL: "Cancel",
    REQUEST_APPROVAL: "Request approval",
    SEND_AGAIN: "Send again",
    PAUSE: "Pause",
    PROPOSE_AGAIN: "Propose again",
    UNDO: "Undo",
}


@dataclass(frozen=True)
class CardView:
    """Everything a change card shows, in the words a card uses."""

    change_id: str
    requester_id: str
    project: str
    flag_key: str
    flag_name: str
    environment: str | None
    sentences: Sequence[str]
    changes: Sequence[FactChange]
    canonical: str
    instructions_json: str
    comment: str | None = None
    status: str | None = None  # e.g. ":hourglass_flowing_sand: Applying…"
    buttons: Sequence[str] = ()
    dangerous: bool = False  # deleteFlag / archiveFlag: Apply asks again in a confirm dialog
    approval_required: bool = False
    approval_asked: bool = False  # asked with --approval (the environment does not require it)
    critical: bool = False  # a critical environment (LaunchDarkly's flag): production, marked as such
    flag_url: str | None = None
    footer: Sequence[str] = field(default_factory=tuple)
    notes: Sequence[str] = ()  # mrkdwn lines under before → after (policy, undo)
    schedule: str | None = None  # when a scheduled change applies, in words
    on_project: bool = False  # a project patch: the card is about the project, not a flag
    read_as: bool = False  # typed otherwise (a natural phrasing): the card says how it was read
    ramp: Sequence[str] = ()  # a ramp: its heading, then one mrkdwn line per step (bot.lifecycle.ramps)


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """mrkdwn text back to what it shows (the reverse of :func:`escape`), e.g. to store it plain."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def quoted(text: str, limit: int = 80) -> str:
    """Typed or stored text echoed back inside a message: clipped, then escaped."""
    return escape(clip(text, limit))


#: How much of a flag's name a link to it shows (a name may be thousands of characters).
LINK_NAME_LIMIT = 80


def flag_link(url: str, name: str, *, limit: int = LINK_NAME_LIMIT) -> str:
    """``<url|Open Name in LaunchDarkly>``, the name clipped before the link is built, so a long
    name can never leave the link unclosed (nor push what follows it out of a context block)."""
    return f"<{url}|Open {escape(clip(' '.join(name.split()), limit))} in LaunchDarkly>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, 2000)} for t in texts[:10] if t],
    }


def shorten_lists(text: str, limit: int = MAX_LISTED) -> str:
    """Each comma-separated run of more than ``limit`` items in ``text`` cut to its first ``limit``
    and ``+N more`` (``target new-checkout test user:a,b,c,…``, ``Add user targets a, b, c…``)."""

    def cut(match: re.Match[str]) -> str:
        separator = ", " if ", " in match[0] else ","
        items = match[0].split(separator)
        if len(items) <= limit:
            return match[0]
        return separator.join(items[:limit]) + f"{separator}+{len(items) - limit} more"

    return _LIST_RUN.sub(cut, text)


# A run of comma-separated items (keys, values): no spaces inside an item, ", " or "," between.
_LIST_RUN = re.compile(r"[^\s,]+(?:,[ ]?[^\s,]+){" + str(MAX_LISTED) + ",}")


def fact_change_line(change: FactChange) -> str:
    """``• *Targeting in production*: OFF → *ON*``; additions and removals say so."""
    label = escape(change.label)
    before = escape(clip(change.before or "", MAX_FACT_CHARS))
    after = escape(clip(change.after or "", MAX_FACT_CHARS))
    if change.before is None:
        return f"• *{label}*: _(new)_ {after}"
    if change.after is None:
        return f"• *{label}*: ~{before}~ _(removed)_"
    return f"• *{label}*: {before} → *{after}*"


def fact_change_lines(changes: Sequence[FactChange], limit: int = MAX_FACT_LINES) -> list[str]:
    """Before → after lines, at most ``limit`` of them, then how many more."""
    lines = [fact_change_line(c) for c in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"_…and {len(changes) - limit} more differences_")
    return lines


def fact_changes_text(changes: Sequence[FactChange]) -> str:
    """Before → after lines, at most ``MAX_FACT_LINES`` of them."""
    if not changes:
        return "_No visible difference: the flag already looks like this._"
    return "\n".join(fact_change_lines(changes))


def button(action_id: str, change_id: str, *, view: CardView | None = None) -> dict[str, Any]:
    """One card button; Apply is primary, or danger behind a confirm dialog for lifecycle kinds."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "value": change_id,
        "text": {"type": "plain_text", "text": BUTTON_TEXT[action_id], "emoji": True},
    }
    if action_id in (APPLY, APPLY_ANYWAY, SEND_AGAIN) and view is not None and view.dangerous:
        element["style"] = "danger"
        element["confirm"] = {
            "title": {"type": "plain_text", "text": "This cannot be undone easily"},
            "text": {
                "type": "mrkdwn",
                "text": clip(f"{'; '.join(view.sentences)}. Are you sure?", 300),
            },
            "confirm": {"type": "plain_text", "text": "Yes, do it"},
            "deny": {"type": "plain_text", "text": "Keep the flag"},
            "style": "danger",
        }
    elif action_id == PAUSE:
        element["style"] = "danger"
        element["confirm"] = {
            "title": {"type": "plain_text", "text": "Pause the ramp?"},
            "text": {"type": "mrkdwn", "text": "The steps not yet run are deleted from LaunchDarkly."},
            "confirm": {"type": "plain_text", "text": "Pause"},
            "deny": {"type": "plain_text", "text": "Keep it"},
            "style": "danger",
        }
    elif action_id in (APPLY, REQUEST_APPROVAL, SEND_AGAIN, APPLY_ANYWAY):
        element["style"] = "primary"
    return element


def card_title(view: CardView) -> str:
    """Who wants what where: ``<@U1> wants to change *new-checkout* in *production* (critical…)``."""
    if view.on_project:
        project = escape(view.project)
        return f":triangular_flag_on_post: <@{view.requester_id}> wants to change project *{project}*"
    where = f" in *{escape(view.environment)}*" if view.environment else ""
    if view.environment and view.critical:
        where += " :rotating_light: _critical environment_"
    return (
        f":triangular_flag_on_post: <@{view.requester_id}> wants to change *{escape(view.flag_key)}*{where}"
    )


MAX_SENTENCES = 8


def sentences_text(sentences: Sequence[str]) -> str:
    """The change in sentences, one a line: long lists cut to their first items and ``+N more``."""
    shown = [f"• {escape(clip(shorten_lists(s), 400))}" for s in sentences[:MAX_SENTENCES]]
    if len(sentences) > MAX_SENTENCES:
        shown.append(f"_+{len(sentences) - MAX_SENTENCES} more changes (⋯ → Details has the whole request)_")
    return "\n".join(shown) or "_no instructions_"


def render_card(view: CardView) -> tuple[str, Blocks]:
    """The change card, what matters first: who wants what where, the change, before → after, the
    state and the buttons. The request itself (JSON, ids) is behind the ⋯ menu's *Details*."""
    what = shorten_lists("; ".join(view.sentences) or "change the flag")
    said = escape(what[0].lower() + what[1:])
    subject = f"project {view.project}" if view.on_project else view.flag_key
    where = f" in {view.environment}" if view.environment and not view.on_project else ""
    text = clip(f"<@{view.requester_id}> wants to {said} ({escape(subject)}{escape(where)})", 3000)
    blocks: Blocks = [_section(card_title(view))]
    blocks.append(_section(sentences_text(view.sentences)))
    if view.schedule:
        when = f":calendar: *Scheduled for {escape(view.schedule)}*"
        blocks.append(_section(f"{when}: Apply schedules it in LaunchDarkly, which applies it then."))
    if view.ramp:
        blocks.append(_section("\n".join(view.ramp)))
    before_after = "*Before → after* (the first step)" if view.ramp else "*Before → after*"
    blocks.append(_section(before_after + "\n" + fact_changes_text(view.changes)))
    if view.notes:
        blocks.append(_section("\n".join(view.notes)))
    if view.comment:
        blocks.append(_context(f":memo: {escape(view.comment)}"))
    if view.approval_required and REQUEST_APPROVAL in view.buttons:
        # Only while Request approval is on offer: once asked (or applied) the status says what is so.
        if view.approval_asked:
            lock = ":lock: You asked for approval (`--approval`): *Request approval* asks reviewers first."
        else:
            lock = (
                f":lock: *{escape(view.environment or '')}* requires approval in LaunchDarkly: "
                "*Request approval* asks reviewers; it applies once approved."
            )
        blocks.append(_context(lock))
    echo = f"`{escape(clip(shorten_lists(view.canonical), 300))}`"
    blocks.append(_context(("read as " if view.read_as else "") + echo))
    if view.status:
        blocks.append(_section(view.status))
    # The lifecycle's buttons, then a menu that stays in every state: Details (the request, ids,
    # LaunchDarkly's answers) and the flag's history (a project card has no flag to show that of).
    elements = [button(b, view.change_id, view=view) for b in view.buttons]
    elements.append(card_menu(view.change_id, history=not view.on_project))
    blocks.append({"type": "actions", "block_id": f"change:{view.change_id}", "elements": elements})
    footer = list(view.footer)
    if view.flag_url:
        footer.append(flag_link(view.flag_url, view.flag_name))
    # The short id is a handle people type (`/flag undo 1a2b3c4d`); the whole one is in Details.
    # It always survives: the rest of the footer gives way (whole parts, never inside a link).
    handle = f"project {escape(clip(view.project, 100))} · change {view.change_id[:8]}"
    while footer and len(" · ".join([*footer, handle])) > 2000:
        footer.pop(0)
    blocks.append(_context(" · ".join([*footer, handle])))
    return text, blocks


def action_button(action_id: str, text: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    """A plain button (``style``: ``primary`` or ``danger``); its value says what it acts on."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": clip(text, 75), "emoji": True},
    }
    if style:
        element["style"] = style
    return element


def guess_button(slash_command: str, corrected: str, *, verb: str = "Propose") -> dict[str, Any] | None:
    """**Propose /flag off new-checkout production** (**Run /flag show …** for what changes
    nothing): the corrected command in one click (None when it does not fit in a button's value)."""
    if not corrected or len(corrected) > BUTTON_VALUE_LIMIT:
        return None
    # The value stays as Slack sent the text (`-&gt;`); the label is plain text, shown as typed.
    shown = corrected.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return action_button(PROPOSE_GUESS, f"{verb} {slash_command} {shown}", corrected, style="primary")


def history_button(project: str, flag: str, environment: str | None) -> dict[str, Any]:
    """A **History** button: the flag's changes from LaunchDarkly's audit log (``bot.history``)."""
    value = json.dumps({"project": project, "flag": flag, "env": environment}, separators=(",", ":"))
    return action_button(HISTORY, "History", value)


def card_menu(change_id: str, *, history: bool = True) -> dict[str, Any]:
    """A change card's ⋯ menu: *Details* (the request as sent, its ids, LaunchDarkly's answers,
    for whoever asks, to them alone) and the history of the card's flag (in its environment)."""
    options = []
    if history:
        options.append({"text": {"type": "plain_text", "text": "History of this flag"}, "value": change_id})
    options.append({"text": {"type": "plain_text", "text": "Details"}, "value": DETAILS_PREFIX + change_id})
    return {"type": "overflow", "action_id": HISTORY_MENU, "options": options}


def history_menu(change_id: str) -> dict[str, Any]:
    """A flag change card's ⋯ menu (:func:`card_menu`)."""
    return card_menu(change_id)


def modal(callback_id: str, title: str, submit: str, private_metadata: str, body: Blocks) -> dict[str, Any]:
    """A modal view with Submit and Cancel (Slack: title 24 characters, metadata 3,000)."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": clip(title, 24)},
        "submit": {"type": "plain_text", "text": clip(submit, 24)},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": private_metadata,
        "blocks": body,
    }


def render_notice(
    text: str, lines: Sequence[str] = (), *, buttons: Sequence[dict[str, Any]] = ()
) -> tuple[str, Blocks]:
    """A thread reply or ephemeral answer: a headline, optional detail lines and buttons."""
    blocks: Blocks = [_section(text)]
    if lines:
        blocks.append(_section("\n".join(lines)))
    if buttons:
        blocks.append({"type": "actions", "elements": list(buttons)})
    return clip(text, 3000), blocks


def render_facts(
    title: str,
    facts: Sequence[Fact],
    *,
    footer: str | None = None,
    buttons: Sequence[dict[str, Any]] = (),
) -> tuple[str, Blocks]:
    """A flag's facts (the answer to ``show``), one line each, then ``buttons``."""
    lines = [f"• *{escape(f.label)}*: {escape(clip(f.text, MAX_FACT_CHARS))}" for f in facts]
    blocks: Blocks = [_section(title)]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > SECTION_LIMIT:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    blocks = blocks[:48]
    if buttons:
        blocks.append({"type": "actions", "elements": list(buttons)})
    if footer:
        blocks.append(_context(footer))
    return clip(title, 3000), blocks


def shorten_json(value: Any, limit: int = 2 * MAX_LISTED) -> Any:
    """``value`` with every list longer than ``limit`` cut to its first ``limit`` items and a
    last ``"+N more"`` (what Details shows of a request with hundreds of keys)."""
    if isinstance(value, dict):
        return {k: shorten_json(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        items = [shorten_json(v, limit) for v in value[:limit]]
        return [*items, f"+{len(value) - limit} more"] if len(value) > limit else items
    return value


def _escaped_pieces(line: str, limit: int) -> list[str]:
    """``line`` escaped and cut into pieces of at most ``limit`` characters each, never inside an
    escape (``&lt;``): the length that counts is the escaped one Slack receives."""
    pieces, piece = [], ""
    for char in line:
        escaped = escape(char)
        if len(piece) + len(escaped) > limit:
            pieces.append(piece)
            piece = ""
        piece += escaped
    return [*pieces, piece]


def code_parts(text: str, limit: int = SECTION_LIMIT - 10) -> list[str]:
    """``text`` escaped and packed into parts of at most ``limit`` characters (a line longer than
    that is cut into pieces), each to show in a code block of its own."""
    parts, part = [], ""
    for line in text.splitlines():
        for piece in _escaped_pieces(line, limit):
            if part and len(part) + 1 + len(piece) > limit:
                parts.append(part)
                part = ""
            part = f"{part}\n{piece}" if part else piece
    if part:
        parts.append(part)
    return parts


MAX_HISTORY = 12
HISTORY_LINE_LIMIT = 1400
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}…$")


def _clip_escaped(text: str, limit: int) -> str:
    """:func:`clip` for escaped mrkdwn: a cut never leaves half an entity (``&l…``)."""
    return _PARTIAL_ENTITY.sub("…", clip(text, limit))


def render_details(
    title: str, facts: Sequence[str], request: str, history: Sequence[str], *, answer: str | None = None
) -> tuple[str, Blocks]:
    """A change's details, for the one person who asked: ``facts`` (ids, where it goes), the
    request as sent (``request``: JSON, escaped here, in code blocks over as many sections as it
    takes; each one closed), and ``history`` (mrkdwn lines, oldest first: each move, with
    LaunchDarkly's answers), of which the newest ``MAX_HISTORY`` are shown, whole or clipped one by
    one, over as many sections as they need: nothing newest is ever cut. ``answer``: LaunchDarkly's
    last answer (plain), shown whole after the moves when the moves had to clip it."""
    body: Blocks = [_section(title)]
    if facts:
        body.append(_section("\n".join(facts)))
    moves: Blocks = []
    if history:
        shown = [_clip_escaped(line, HISTORY_LINE_LIMIT) for line in history[-MAX_HISTORY:]]
        if len(history) > MAX_HISTORY:
            shown.insert(0, f"_+{len(history) - MAX_HISTORY} earlier moves_")
        chunk = "*What happened*"
        for line in shown:
            if len(chunk) + 1 + len(line) > SECTION_LIMIT:
                moves.append(_section(chunk))
                chunk = ""
            chunk = f"{chunk}\n{line}" if chunk else line
        moves.append(_section(chunk))
    if answer:
        whole = code_parts(answer)
        moves.append(_section("*LaunchDarkly's last answer, whole*"))
        moves += [_section(f"```{part}```") for part in whole[:5]]
        if len(whole) > 5:
            moves.append(_context(f"+{len(whole) - 5} more parts are not shown here."))
    parts = code_parts(request)
    room = max(1, min(30, 50 - len(body) - len(moves) - 1))
    for part in parts[:room]:
        body.append(_section(f"```{part}```"))
    if len(parts) > room:
        more = len(parts) - room
        body.append(_context(f"+{more} more parts of the request are not shown (a message holds 50 blocks)."))
    return clip(title, 3000), [*body, *moves][:50]


def render_text(text: str) -> tuple[str, Blocks]:
    """Plain text, split over sections when long (help, lists)."""
    blocks: Blocks = []
    chunk = ""
    for line in text.splitlines():
        if chunk and len(chunk) + len(line) + 1 > SECTION_LIMIT:
            blocks.append(_section(chunk))
            chunk = ""
        chunk += line + "\n"  # a single line longer than a section is clipped by _section
    if chunk.strip():
        blocks.append(_section(chunk))
    return clip(text, 3000), blocks[:50]
