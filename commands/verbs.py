"""The change verbs' grammars: what follows ``<verb> <flag> [<env>]``, as intents.

``parse`` has read the verb, the flag and the environment; each (private) function here reads the rest of
one segment and returns its intents (one per instruction). The syntax of each verb is in
``commands/registry.py``; this module and ``commands/render.py`` (its inverse) follow it.
"""

from __future__ import annotations

from collections.abc import Callable

from commands import grammar as g
from commands.grammar import Cursor, build, mention_key, mentioned_user
from commands.intents import (
    AddClauses,
    AddClauseValues,
    AddCustomProperty,
    AddPrerequisite,
    AddRule,
    AddTags,
    AddTargets,
    AddUserTargets,
    AddVariation,
    AnyIntent,
    Archive,
    ClauseSpec,
    ClearTargets,
    ClearUserTargets,
    Delete,
    Deprecate,
    ExposeClientSide,
    HideClientSide,
    MaintainerMember,
    MaintainerTeam,
    MakePermanent,
    MakeTemporary,
    Prerequisite,
    RemoveClauses,
    RemoveClauseValues,
    RemoveCustomPropertyValues,
    RemoveMaintainer,
    RemovePrerequisite,
    RemoveRule,
    RemoveTags,
    RemoveTargets,
    RemoveUserTargets,
    RemoveVariation,
    Rename,
    RenameRule,
    ReorderRules,
    ReplaceCustomProperty,
    ReplacePrerequisites,
    ReplaceRules,
    ReplaceTargets,
    ReplaceUserTargets,
    Restore,
    RuleDraft,
    RuleRef,
    Serving,
    SetDefaultVariations,
    SetDescription,
    SetFallthrough,
    SetFallthroughTrackEvents,
    SetOffVariation,
    SetRuleServe,
    SetRuleTrackEvents,
    SetTrackEvents,
    TargetGroup,
    TurnOff,
    TurnOn,
    Undeprecate,
    UpdateClause,
    UpdatePrerequisite,
    UpdateVariation,
    UserTargetGroup,
    ValueLiteral,
    VariationRef,
)

VerbParser = Callable[[Cursor, str], list[AnyIntent]]

#: SDK words for expose/hide -> LaunchDarkly's availability names.
SDK_WORDS: dict[str, str] = {
    "mobile": "usingMobileKey",
    "mobile-key": "usingMobileKey",
    "usingMobileKey": "usingMobileKey",
    "client-side": "usingEnvironmentId",
    "client": "usingEnvironmentId",
    "javascript": "usingEnvironmentId",
    "js": "usingEnvironmentId",
    "environment-id": "usingEnvironmentId",
    "usingEnvironmentId": "usingEnvironmentId",
}
# Words that end a list of target keys.
_KEYS_END = ("to", "from")


def _text(cur: Cursor, what: str) -> str:
    """Free text: one word, or several in quotes (``""`` is empty text)."""
    return cur.name(f"{what} (in quotes if it has spaces)", allow_empty=True)


# --- targets ------------------------------------------------------------------------------------


def _key_groups(cur: Cursor, *, kinds: bool) -> list[tuple[str, list[str]]]:
    """``[<kind>:]<key>[,<key>] ...`` up to ``->``/``to``/``from``/the end, grouped by kind.

    A ``kind:`` prefix starts a group; keys after it without one join it; keys before any prefix
    are users. A quoted key is taken as is (``"urn:x"`` is a user key containing a colon).
    """
    groups: list[tuple[str, list[str]]] = []
    kind = "user"
    while (tok := cur.peek()) is not None and not tok.is_punct("->") and not tok.is_(*_KEYS_END):
        cur.pos += 1
        if tok.is_punct(","):
            continue
        if tok.kind == "mention":
            # `<@U0BOB>`: a person, targeted as a user by the email Slack has for them (the bot
            # looks it up before anything is resolved, and the card says it).
            if kind != "user":
                raise cur.error(f"a Slack mention is a person: it is targeted as a user, not as {kind}")
            key = mention_key(tok.text)
        elif tok.kind not in ("word", "string") or not tok.text:
            raise cur.error(f"expected a context key, got {g.describe_token(tok)}")
        else:
            key = tok.text
            if mentioned_user(key) is not None:  # typed as text (`&lt;@U1&gt;`), not a mention
                raise cur.error(f'"{key}" looks like a Slack mention: mention the person instead')
        if kinds and tok.kind == "word" and ":" in key:
            kind, _, key = key.partition(":")
            if not kind:
                raise cur.error(f'"{tok.text}": write <kind>:<key>, like device:ios-qa-1')
            if not key:  # `device: "key with spaces"`: the kind alone starts the group
                continue
        for group_kind, keys in groups:
            if group_kind == kind:
                keys.append(key)
                break
        else:
            groups.append((kind, [key]))
    if not groups:
        raise cur.error("missing the keys to target")
    return groups


def _target(cur: Cursor, flag: str) -> list[AnyIntent]:
    first, rest = cur.peek(), cur.tokens[cur.pos + 1 :]
    if (
        first is not None
        and (first.is_("true", "false") or (first.is_word and first.text.startswith("#")))
        and rest
        and not any(t.is_punct("->") or t.is_(*_KEYS_END) for t in rest)
    ):
        # `target new-checkout production true <@U0BOB>`: the variation first, then who (only
        # true, false or #n: any other word would read as a key; the arrow form says it plainly).
        ref = g.variation(cur)
        groups = _key_groups(cur, kinds=True)
    else:
        groups = _key_groups(cur, kinds=True)
        cur.expect_arrow()
        ref = g.variation(cur)
    cur.done()
    return [build(AddTargets, cur, context_kind=k, keys=tuple(keys), variation=ref) for k, keys in groups]


def _untarget(cur: Cursor, flag: str) -> list[AnyIntent]:
    groups = _key_groups(cur, kinds=True)
    ref = g.variation(cur) if cur.accept("from") else None
    cur.done()
    return [build(RemoveTargets, cur, context_kind=k, keys=tuple(keys), variation=ref) for k, keys in groups]


def _clear_targets(cur: Cursor, flag: str) -> list[AnyIntent]:
    ref = g.variation(cur)
    cur.done()
    return [ClearTargets(variation=ref)]


def _replace_targets(cur: Cursor, flag: str) -> list[AnyIntent]:
    targets: list[TargetGroup] = []
    if not cur.accept("none"):
        while not cur.at_end():
            groups = _key_groups(cur, kinds=True)
            cur.expect_arrow()
            ref = g.variation(cur)
            targets += [
                build(TargetGroup, cur, context_kind=k, keys=tuple(keys), variation=ref) for k, keys in groups
            ]
    cur.done()
    return [ReplaceTargets(targets=tuple(targets))]


def _user_keys(cur: Cursor) -> tuple[str, ...]:
    ((_, keys),) = _key_groups(cur, kinds=False)
    return tuple(keys)


def _target_users(cur: Cursor, flag: str) -> list[AnyIntent]:
    keys = _user_keys(cur)
    cur.expect_arrow()
    ref = g.variation(cur)
    cur.done()
    return [build(AddUserTargets, cur, keys=keys, variation=ref)]


def _untarget_users(cur: Cursor, flag: str) -> list[AnyIntent]:
    keys = _user_keys(cur)
    ref = g.variation(cur) if cur.accept("from") else None
    cur.done()
    return [build(RemoveUserTargets, cur, keys=keys, variation=ref)]


def _clear_user_targets(cur: Cursor, flag: str) -> list[AnyIntent]:
    ref = g.variation(cur)
    cur.done()
    return [ClearUserTargets(variation=ref)]


def _replace_user_targets(cur: Cursor, flag: str) -> list[AnyIntent]:
    targets: list[UserTargetGroup] = []
    if not cur.accept("none"):
        while not cur.at_end():
            keys = _user_keys(cur)
            cur.expect_arrow()
            targets.append(build(UserTargetGroup, cur, keys=keys, variation=g.variation(cur)))
    cur.done()
    return [ReplaceUserTargets(targets=tuple(targets))]


# --- serving ------------------------------------------------------------------------------------


def _serve(cur: Cursor, flag: str) -> list[AnyIntent]:
    rule = g.rule_ref(cur) if cur.accept("rule") else None
    what = g.serving(cur)
    cur.done()
    if rule is None:
        return [SetFallthrough(serve=what)]
    return [SetRuleServe(rule=rule, serve=what)]


def _off_variation(cur: Cursor, flag: str) -> list[AnyIntent]:
    ref = g.variation(cur)
    cur.done()
    return [SetOffVariation(variation=ref)]


def _track_events(cur: Cursor, flag: str) -> list[AnyIntent]:
    intent: AnyIntent
    if cur.accept("rule"):
        rule = g.rule_ref(cur)
        intent = SetRuleTrackEvents(rule=rule, track_events=g.on_off(cur))
    elif cur.accept("default"):
        intent = SetFallthroughTrackEvents(track_events=g.on_off(cur))
    else:
        intent = SetTrackEvents(track_events=g.on_off(cur))
    cur.done()
    return [intent]


# --- rules --------------------------------------------------------------------------------------


class _RuleParts:
    """The sections of a rule, as ``add rule`` and ``replace rules`` read them."""

    def __init__(self, cur: Cursor, *, allow_before: bool) -> None:
        self.cur = cur
        self.description: str | None = None
        self.clauses: tuple[ClauseSpec, ...] = ()
        self.serve: Serving | None = None
        self.before: RuleRef | None = None
        self.track_events: bool | None = None
        self.handlers: dict[str, Callable[[], None]] = {
            "named": self._named,
            "if": self._if,
            "serve": self._serve,
            "track-events": self._track,
        }
        if allow_before:
            self.handlers["before"] = self._before

    def read(self, stop: str | None = None) -> None:
        g.sections(self.cur, self.handlers, stop)
        if self.serve is None:
            raise self.cur.error("a rule needs `serve <variation>` or `serve <pct>% <variation> ...`")

    def _named(self) -> None:
        self.description = _text(self.cur, "the rule's description")

    def _if(self) -> None:
        self.clauses = g.clauses(self.cur)

    def _serve(self) -> None:
        self.serve = g.serving(self.cur)

    def _before(self) -> None:
        self.cur.expect("rule", "after `before`")
        self.before = g.rule_ref(self.cur)

    def _track(self) -> None:
        self.track_events = g.on_off(self.cur)


def _add_rule(cur: Cursor, flag: str) -> list[AnyIntent]:
    parts = _RuleParts(cur, allow_before=True)
    parts.read()
    return [
        build(
            AddRule,
            cur,
            clauses=parts.clauses,
            serve=parts.serve,
            before=parts.before,
            description=parts.description,
            track_events=parts.track_events,
        )
    ]


def _remove_rule(cur: Cursor, flag: str) -> list[AnyIntent]:
    cur.accept("rule")
    rule = g.rule_ref(cur)
    cur.done()
    return [RemoveRule(rule=rule)]


def _reorder_rules(cur: Cursor, flag: str) -> list[AnyIntent]:
    rules = [g.rule_ref(cur)]
    while cur.accept_punct(","):
        rules.append(g.rule_ref(cur))
    cur.done()
    if len(set(rules)) != len(rules):
        raise cur.error("a rule appears twice in the new order")
    return [ReorderRules(rules=tuple(rules))]


def _replace_rules(cur: Cursor, flag: str) -> list[AnyIntent]:
    drafts: list[RuleDraft] = []
    if not cur.accept("none"):
        cur.expect("rule", "(each rule starts with `rule`)")
        while True:
            parts = _RuleParts(cur, allow_before=False)
            parts.read(stop="rule")
            drafts.append(
                build(
                    RuleDraft,
                    cur,
                    clauses=parts.clauses,
                    serve=parts.serve,
                    description=parts.description,
                    track_events=parts.track_events,
                )
            )
            if not cur.accept("rule"):
                break
    cur.done()
    return [ReplaceRules(rules=tuple(drafts))]


def _rename_rule(cur: Cursor, flag: str) -> list[AnyIntent]:
    cur.accept("rule")
    rule = g.rule_ref(cur)
    cur.expect("to", "and the new description")
    description = cur.rest_text("the new description", allow_empty=True)
    cur.done()
    return [RenameRule(rule=rule, description=description)]


def _rule(cur: Cursor) -> RuleRef:
    cur.expect("rule", "and which rule")
    return g.rule_ref(cur)


def _add_clause(cur: Cursor, flag: str) -> list[AnyIntent]:
    rule = _rule(cur)
    cur.accept("if")
    specs = g.clauses(cur)
    cur.done()
    return [AddClauses(rule=rule, clauses=specs)]


def _remove_clause(cur: Cursor, flag: str) -> list[AnyIntent]:
    rule = _rule(cur)
    if not cur.accept("clause", "clauses"):
        raise cur.error("expected `clause` and which clause(s)")
    refs = [g.clause_ref(cur)]
    while cur.accept_punct(","):
        refs.append(g.clause_ref(cur))
    cur.done()
    return [RemoveClauses(rule=rule, clauses=tuple(refs))]


def _values_change(cur: Cursor, model: type[AddClauseValues] | type[RemoveClauseValues]) -> list[AnyIntent]:
    rule = _rule(cur)
    cur.expect("clause", "and which clause")
    ref = g.clause_ref(cur)
    vals = g.values(cur)
    cur.done()
    return [model(rule=rule, clause=ref, values=vals)]


def _add_values(cur: Cursor, flag: str) -> list[AnyIntent]:
    return _values_change(cur, AddClauseValues)


def _remove_values(cur: Cursor, flag: str) -> list[AnyIntent]:
    return _values_change(cur, RemoveClauseValues)


def _update_clause(cur: Cursor, flag: str) -> list[AnyIntent]:
    rule = _rule(cur)
    cur.expect("clause", "and which clause")
    ref = g.clause_ref(cur)
    cur.expect("to", "and the new clause")
    spec = g.clause(cur)
    cur.done()
    return [UpdateClause(rule=rule, clause=ref, new=spec)]


# --- prerequisites ------------------------------------------------------------------------------


def _prerequisite(cur: Cursor) -> tuple[str, VariationRef]:
    key = cur.name("the prerequisite flag's key")
    cur.accept("=", "is")
    return key, g.variation(cur)


def _add_prereq(cur: Cursor, flag: str) -> list[AnyIntent]:
    key, ref = _prerequisite(cur)
    cur.done()
    return [AddPrerequisite(key=key, variation=ref)]


def _update_prereq(cur: Cursor, flag: str) -> list[AnyIntent]:
    key, ref = _prerequisite(cur)
    cur.done()
    return [UpdatePrerequisite(key=key, variation=ref)]


def _remove_prereq(cur: Cursor, flag: str) -> list[AnyIntent]:
    key = cur.name("the prerequisite flag's key")
    cur.done()
    return [RemovePrerequisite(key=key)]


def _replace_prereqs(cur: Cursor, flag: str) -> list[AnyIntent]:
    items: list[Prerequisite] = []
    if not cur.accept("none"):
        while True:
            key, ref = _prerequisite(cur)
            items.append(Prerequisite(key=key, variation=ref))
            if not cur.accept_punct(","):
                break
    cur.done()
    if len({p.key for p in items}) != len(items):
        raise cur.error("a prerequisite flag appears twice")
    return [ReplacePrerequisites(prerequisites=tuple(items))]


# --- variations ---------------------------------------------------------------------------------


def _add_variation(cur: Cursor, flag: str) -> list[AnyIntent]:
    value = g.value_literal(cur)
    found: dict[str, str] = {}
    g.sections(
        cur,
        {
            "named": lambda: found.__setitem__("name", _text(cur, "the variation's name")),
            "description": lambda: found.__setitem__(
                "description", _text(cur, "the variation's description")
            ),
        },
    )
    return [AddVariation(value=value, **found)]


def _remove_variation(cur: Cursor, flag: str) -> list[AnyIntent]:
    ref = g.variation(cur)
    cur.done()
    return [RemoveVariation(variation=ref)]


def _update_variation(cur: Cursor, flag: str) -> list[AnyIntent]:
    ref = g.variation(cur)
    value: list[ValueLiteral] = []
    found: dict[str, str] = {}
    g.sections(
        cur,
        {
            "value": lambda: value.append(g.value_literal(cur)),
            "named": lambda: found.__setitem__("name", _text(cur, "the variation's name")),
            "description": lambda: found.__setitem__(
                "description", _text(cur, "the variation's description")
            ),
        },
    )
    return [build(UpdateVariation, cur, variation=ref, value=value[0] if value else None, **found)]


def _default_variations(cur: Cursor, flag: str) -> list[AnyIntent]:
    found: dict[str, VariationRef] = {}
    g.sections(
        cur,
        {
            "on": lambda: found.__setitem__("on", g.variation(cur)),
            "off": lambda: found.__setitem__("off", g.variation(cur)),
        },
    )
    return [build(SetDefaultVariations, cur, **found)]


# --- settings -----------------------------------------------------------------------------------


def _words(cur: Cursor, what: str) -> tuple[str, ...]:
    """``a,b c``: one or more names, separated by commas and/or spaces."""
    items: list[str] = []
    while not cur.at_end():
        if cur.accept_punct(","):
            continue
        items.append(cur.name(what))
    if not items:
        raise cur.error(f"missing {what}")
    return tuple(items)


def _add_tags(cur: Cursor, flag: str) -> list[AnyIntent]:
    return [AddTags(tags=_words(cur, "a tag"))]


def _remove_tags(cur: Cursor, flag: str) -> list[AnyIntent]:
    return [RemoveTags(tags=_words(cur, "a tag"))]


def _property(cur: Cursor, *, allow_none: bool) -> tuple[str, tuple[str, ...], dict[str, str]]:
    key = cur.name("the custom property's key")
    vals: tuple[str, ...] = () if allow_none and cur.accept("none") else cur.names("a value")
    found: dict[str, str] = {}
    g.sections(cur, {"named": lambda: found.__setitem__("name", _text(cur, "the property's name"))})
    return key, vals, found


def _add_property(cur: Cursor, flag: str) -> list[AnyIntent]:
    key, vals, found = _property(cur, allow_none=False)
    return [build(AddCustomProperty, cur, key=key, values=vals, **found)]


def _replace_property(cur: Cursor, flag: str) -> list[AnyIntent]:
    key, vals, found = _property(cur, allow_none=True)
    return [build(ReplaceCustomProperty, cur, key=key, values=vals, **found)]


def _remove_property(cur: Cursor, flag: str) -> list[AnyIntent]:
    key = cur.name("the custom property's key")
    vals = cur.names("a value")
    cur.done()
    return [RemoveCustomPropertyValues(key=key, values=vals)]


def _maintainer(cur: Cursor, flag: str) -> list[AnyIntent]:
    tok = cur.peek()
    if tok is not None and tok.kind == "mention":
        raise cur.error("name the maintainer by LaunchDarkly email or member id, not by Slack mention")
    intent: AnyIntent
    if cur.accept("team"):
        intent = MaintainerTeam(team=cur.name("the team's key"))
    else:
        who = cur.name("an email, a member id, or team:<key>")
        if who.startswith("team:") and len(who) > len("team:") and tok is not None and tok.kind == "word":
            intent = MaintainerTeam(team=who.removeprefix("team:"))
        else:
            intent = MaintainerMember(member=who)
    cur.done()
    return [intent]


def _remove_maintainer(cur: Cursor, flag: str) -> list[AnyIntent]:
    cur.done()
    return [RemoveMaintainer()]


def _sdks(cur: Cursor) -> list[str]:
    found: list[str] = []
    for word in _words(cur, "mobile or client-side"):
        sdk = SDK_WORDS.get(word) or SDK_WORDS.get(word.lower())
        if sdk is None:
            raise cur.error(f'"{word}": say mobile or client-side{g.suggest(word, list(SDK_WORDS))}')
        if sdk not in found:
            found.append(sdk)
    return found


def _expose(cur: Cursor, flag: str) -> list[AnyIntent]:
    return [ExposeClientSide(sdk=sdk) for sdk in _sdks(cur)]


def _hide(cur: Cursor, flag: str) -> list[AnyIntent]:
    return [HideClientSide(sdk=sdk) for sdk in _sdks(cur)]


def _rename(cur: Cursor, flag: str) -> list[AnyIntent]:
    name = cur.rest_text("the new name")
    cur.done()
    return [build(Rename, cur, name=name)]


def _describe(cur: Cursor, flag: str) -> list[AnyIntent]:
    text = cur.rest_text("the new description", allow_empty=True)
    cur.done()
    return [SetDescription(description=text)]


def _bare(intent: AnyIntent) -> VerbParser:
    def parse_bare(cur: Cursor, flag: str) -> list[AnyIntent]:
        cur.done()
        return [intent]

    return parse_bare


def _delete(cur: Cursor, flag: str) -> list[AnyIntent]:
    # Deleting cannot be undone: LaunchDarkly's UI makes you type the key; so do we.
    if not cur.accept("confirm") or cur.at_end() or cur.name("the flag key again") != flag:
        raise cur.error(f"deleting cannot be undone: type the key again, `delete {flag} confirm {flag}`")
    cur.done()
    return [Delete()]


#: registry verb name -> its grammar.
CHANGE_VERBS: dict[str, VerbParser] = {
    "on": _bare(TurnOn()),
    "off": _bare(TurnOff()),
    "target": _target,
    "untarget": _untarget,
    "clear targets": _clear_targets,
    "replace targets": _replace_targets,
    "target-users": _target_users,
    "untarget-users": _untarget_users,
    "clear user-targets": _clear_user_targets,
    "replace user-targets": _replace_user_targets,
    "serve": _serve,
    "off-variation": _off_variation,
    "track-events": _track_events,
    "add rule": _add_rule,
    "remove rule": _remove_rule,
    "reorder rules": _reorder_rules,
    "replace rules": _replace_rules,
    "rename rule": _rename_rule,
    "add clause": _add_clause,
    "remove clause": _remove_clause,
    "add values": _add_values,
    "remove values": _remove_values,
    "update clause": _update_clause,
    "add prereq": _add_prereq,
    "remove prereq": _remove_prereq,
    "update prereq": _update_prereq,
    "replace prereqs": _replace_prereqs,
    "add variation": _add_variation,
    "remove variation": _remove_variation,
    "update variation": _update_variation,
    "default-variations": _default_variations,
    "add tags": _add_tags,
    "remove tags": _remove_tags,
    "add property": _add_property,
    "replace property": _replace_property,
    "remove property": _remove_property,
    "maintainer": _maintainer,
    "remove maintainer": _remove_maintainer,
    "expose": _expose,
    "hide": _hide,
    "rename": _rename,
    "describe": _describe,
    "make permanent": _bare(MakePermanent()),
    "make temporary": _bare(MakeTemporary()),
    "archive": _bare(Archive()),
    "restore": _bare(Restore()),
    "deprecate": _bare(Deprecate()),
    "undeprecate": _bare(Undeprecate()),
    "delete": _delete,
}
