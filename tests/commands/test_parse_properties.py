"""Properties of the parser: any text gives a command or a CommandError; intent → text → intent."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import canonical, parse
from commands import intents as it
from commands.errors import CommandError
from commands.instructions import CLAUSE_OPS, TOTAL_WEIGHT
from commands.registry import VERB_INDEX
from commands.render import KEYWORDS

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- arbitrary text -----------------------------------------------------------------------------

# Pieces of the language, so that random text reaches deep into the grammar, not just the verb.
_PIECES = [
    *VERB_INDEX,
    *KEYWORDS,
    "new-checkout",
    "test",
    "production",
    "->",
    "-&gt;",
    "→",
    ",",
    ";",
    "%",
    "10%",
    "90%",
    "33.333%",
    "#1",
    "#0",
    "rule",
    "clause",
    "if",
    "and",
    "not",
    "in",
    "at",
    "2",
    "hours",
    "2h",
    "-m",
    "--env",
    "-e",
    "-p",
    "--approval",
    "--reviewers",
    "--tag",
    "--comment=x",
    "<@U1>",
    "<@U1|bob>",
    "<#C1|x>",
    "<!here>",
    "<https://x.io|x.io>",
    "<mailto:a@b.io|a@b.io>",
    '"',
    "'",
    "“",
    "”",
    "‘",
    "’",
    "{",
    "}",
    "[",
    "]",
    '{"kind": "turnFlagOn"}',
    '[{"kind": "turnFlagOn"}]',
    "user:alice",
    "device:",
    ":",
    "&lt;",
    "&amp;",
    ">=",
    "semver<",
    "IN",
    "segmentMatch",
    "true",
    "false",
    "1e999",
    "9" * 50,
    "-1.5",
    "\\",
    "\u00a0",
    "\n",
    "é",
    '""',
    "''",
    "--env=",
    "--reviewers=",
    "-p=''",
    'raw new-checkout {"environmentKey": "", "instructions": [{"kind": "addTags", "values": ["a"]}]}',
]
_pieces_text = st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=14).map(" ".join)


@FAST
@given(st.one_of(st.text(max_size=80), _pieces_text))
def test_any_text_is_a_command_or_a_command_error(text: str) -> None:
    try:
        cmd = parse(text)
    except CommandError as exc:
        assert exc.message
        return
    assert isinstance(
        cmd,
        it.ChangeCommand
        | it.ShowCommand
        | it.ListCommand
        | it.HelpCommand
        | it.RawCommand
        | it.ReservedCommand,
    )


# --- intents round-trip through their canonical text --------------------------------------------

_WORD_RE = r"[a-z][a-z0-9-]{0,8}"
ident = st.from_regex(_WORD_RE, fullmatch=True).filter(lambda w: w not in KEYWORDS and not w[-1:].isdigit())
# Free text: anything but the characters Slack or the lexer normalise (smart quotes, markup, entities).
free = st.text(
    st.characters(
        codec="utf-8", categories=["L", "N", "P", "S", "Zs"], exclude_characters="<>&“”„‘’‚→\u00a0"
    ),
    max_size=12,
)
text1 = free.filter(bool)

variation = st.one_of(
    st.builds(lambda i: it.VariationRef(index=i), st.integers(1, 20)),
    st.builds(lambda t: it.VariationRef(text=t, quoted=True), free),
    st.builds(
        lambda t: it.VariationRef(text=t), ident | st.sampled_from(["true", "false", "20", "-1.5", "v2"])
    ),
)
rule = st.one_of(
    st.builds(lambda p: it.RuleRef(position=p), st.integers(1, 50)),
    st.builds(lambda d: it.RuleRef(description=d), text1),
)
clause_ref = st.one_of(
    st.builds(lambda p: it.ClauseRef(position=p), st.integers(1, 9)),
    st.builds(lambda a: it.ClauseRef(attribute=a), text1),
)
value = st.one_of(
    free, st.booleans(), st.integers(-(10**15), 10**15), st.floats(allow_nan=False, allow_infinity=False)
)
values = st.lists(value, min_size=1, max_size=3).map(tuple)


@st.composite
def clause_spec(draw: Any) -> it.ClauseSpec:
    kind = draw(st.none() | ident)
    attribute = draw(ident if kind is not None else text1)
    return it.ClauseSpec(
        attribute=attribute,
        op=draw(st.sampled_from(CLAUSE_OPS)),
        values=draw(values),
        negate=draw(st.booleans()),
        context_kind=kind,
    )


segment_clause = st.builds(
    lambda v, n: it.ClauseSpec(attribute="segmentMatch", op="segmentMatch", values=v, negate=n),
    values,
    st.booleans(),
)
clauses = st.lists(clause_spec() | segment_clause, max_size=3).map(tuple)


@st.composite
def rollout(draw: Any) -> it.Rollout:
    refs = draw(st.lists(variation, min_size=1, max_size=4, unique=True))
    cuts = sorted(
        draw(st.lists(st.integers(0, TOTAL_WEIGHT), min_size=len(refs) - 1, max_size=len(refs) - 1))
    )
    bounds = [0, *cuts, TOTAL_WEIGHT]
    weights = tuple(it.Weight(variation=r, weight=bounds[i + 1] - bounds[i]) for i, r in enumerate(refs))
    return it.Rollout(
        weights=weights, bucket_by=draw(st.none() | ident), context_kind=draw(st.none() | ident)
    )


serving = st.one_of(st.builds(it.ServeVariation, variation=variation), rollout())
keys = st.lists(text1, min_size=1, max_size=3).map(tuple)
kind = st.just("user") | ident
literal = st.one_of(
    st.builds(lambda t: it.ValueLiteral(text=t, form="string"), free),
    st.builds(lambda t: it.ValueLiteral(text=t), ident | st.sampled_from(["20", "true", "null", "-3.5"])),
    st.builds(
        lambda t: it.ValueLiteral(text=t, form="json"),
        st.sampled_from(['{"a": [1, 2]}', "[]", '{"b": "c d"}']),
    ),
)
draft = st.builds(
    it.RuleDraft,
    clauses=clauses,
    serve=serving,
    description=st.none() | free,
    track_events=st.none() | st.booleans(),
)
sdk = st.sampled_from(["usingMobileKey", "usingEnvironmentId"])

INTENTS = {
    "turnFlagOn": st.just(it.TurnOn()),
    "turnFlagOff": st.just(it.TurnOff()),
    "addTargets": st.builds(it.AddTargets, context_kind=kind, keys=keys, variation=variation),
    "removeTargets": st.builds(
        it.RemoveTargets, context_kind=kind, keys=keys, variation=st.none() | variation
    ),
    "clearTargets": st.builds(it.ClearTargets, variation=variation),
    "replaceTargets": st.builds(
        it.ReplaceTargets,
        targets=st.lists(
            st.builds(it.TargetGroup, context_kind=kind, keys=keys, variation=variation), max_size=3
        ).map(tuple),
    ),
    "addUserTargets": st.builds(it.AddUserTargets, keys=keys, variation=variation),
    "removeUserTargets": st.builds(it.RemoveUserTargets, keys=keys, variation=st.none() | variation),
    "clearUserTargets": st.builds(it.ClearUserTargets, variation=variation),
    "replaceUserTargets": st.builds(
        it.ReplaceUserTargets,
        targets=st.lists(st.builds(it.UserTargetGroup, keys=keys, variation=variation), max_size=3).map(
            tuple
        ),
    ),
    "updateFallthroughVariationOrRollout": st.builds(it.SetFallthrough, serve=serving),
    "updateRuleVariationOrRollout": st.builds(it.SetRuleServe, rule=rule, serve=serving),
    "updateOffVariation": st.builds(it.SetOffVariation, variation=variation),
    "addRule": st.builds(
        it.AddRule,
        clauses=clauses,
        serve=serving,
        before=st.none() | rule,
        description=st.none() | free,
        track_events=st.none() | st.booleans(),
    ),
    "removeRule": st.builds(it.RemoveRule, rule=rule),
    "reorderRules": st.builds(
        it.ReorderRules, rules=st.lists(rule, min_size=1, max_size=4, unique=True).map(tuple)
    ),
    "replaceRules": st.builds(it.ReplaceRules, rules=st.lists(draft, max_size=3).map(tuple)),
    "updateRuleDescription": st.builds(it.RenameRule, rule=rule, description=free),
    "updateRuleTrackEvents": st.builds(it.SetRuleTrackEvents, rule=rule, track_events=st.booleans()),
    "updateTrackEvents": st.builds(it.SetTrackEvents, track_events=st.booleans()),
    "updateTrackEventsFallthrough": st.builds(it.SetFallthroughTrackEvents, track_events=st.booleans()),
    "addClauses": st.builds(it.AddClauses, rule=rule, clauses=clauses.filter(bool)),
    "removeClauses": st.builds(
        it.RemoveClauses, rule=rule, clauses=st.lists(clause_ref, min_size=1, max_size=3).map(tuple)
    ),
    "addValuesToClause": st.builds(it.AddClauseValues, rule=rule, clause=clause_ref, values=values),
    "removeValuesFromClause": st.builds(it.RemoveClauseValues, rule=rule, clause=clause_ref, values=values),
    "updateClause": st.builds(
        it.UpdateClause, rule=rule, clause=clause_ref, new=clause_spec() | segment_clause
    ),
    "addPrerequisite": st.builds(it.AddPrerequisite, key=text1, variation=variation),
    "removePrerequisite": st.builds(it.RemovePrerequisite, key=text1),
    "updatePrerequisite": st.builds(it.UpdatePrerequisite, key=text1, variation=variation),
    "replacePrerequisites": st.builds(
        it.ReplacePrerequisites,
        prerequisites=st.lists(
            st.builds(it.Prerequisite, key=text1, variation=variation), max_size=3, unique_by=lambda p: p.key
        ).map(tuple),
    ),
    "addVariation": st.builds(
        it.AddVariation, value=literal, name=st.none() | free, description=st.none() | free
    ),
    "removeVariation": st.builds(it.RemoveVariation, variation=variation),
    "updateVariation": st.one_of(
        st.builds(
            it.UpdateVariation,
            variation=variation,
            value=literal,
            name=st.none() | free,
            description=st.none() | free,
        ),
        st.builds(it.UpdateVariation, variation=variation, name=free, description=st.none() | free),
        st.builds(it.UpdateVariation, variation=variation, description=free),
    ),
    "updateDefaultVariation": st.one_of(
        st.builds(it.SetDefaultVariations, on=variation, off=st.none() | variation),
        st.builds(it.SetDefaultVariations, off=variation),
    ),
    "addCustomProperties": st.builds(it.AddCustomProperty, key=text1, values=keys, name=st.none() | text1),
    "replaceCustomProperties": st.builds(
        it.ReplaceCustomProperty,
        key=text1,
        values=st.lists(text1, max_size=3).map(tuple),
        name=st.none() | text1,
    ),
    "removeCustomProperties": st.builds(it.RemoveCustomPropertyValues, key=text1, values=keys),
    "addTags": st.builds(it.AddTags, tags=keys),
    "removeTags": st.builds(it.RemoveTags, tags=keys),
    "makeFlagPermanent": st.just(it.MakePermanent()),
    "makeFlagTemporary": st.just(it.MakeTemporary()),
    "removeMaintainer": st.just(it.RemoveMaintainer()),
    "updateMaintainerMember": st.builds(it.MaintainerMember, member=text1),
    "updateMaintainerTeam": st.builds(it.MaintainerTeam, team=text1),
    "turnOnClientSideAvailability": st.builds(it.ExposeClientSide, sdk=sdk),
    "turnOffClientSideAvailability": st.builds(it.HideClientSide, sdk=sdk),
    "updateDescription": st.builds(it.SetDescription, description=free),
    "updateName": st.builds(it.Rename, name=text1),
    "archiveFlag": st.just(it.Archive()),
    "deleteFlag": st.just(it.Delete()),
    "deprecateFlag": st.just(it.Deprecate()),
    "restoreDeprecatedFlag": st.just(it.Undeprecate()),
    "restoreFlag": st.just(it.Restore()),
}

reviewer = st.one_of(
    st.from_regex(r"<@U[A-Z0-9]{3,8}>", fullmatch=True),
    ident.map(lambda w: "@" + w),
    ident.map(lambda w: w + "@example.com"),
)
schedule = st.one_of(
    st.builds(
        it.Schedule, kind=st.just("in"), text=st.sampled_from(["2 hours", "90m", "1h30m", "a day", "3 weeks"])
    ),
    st.builds(
        it.Schedule, kind=st.just("at"), text=st.sampled_from(["2026-01-05 09:00", "5pm tomorrow", "noon"])
    ),
)


@st.composite
def change_command(draw: Any, intents: st.SearchStrategy[Any]) -> it.ChangeCommand:
    changes = tuple(draw(st.lists(intents, min_size=1, max_size=3)))
    scoped = any(c.environment_scoped for c in changes)
    return it.ChangeCommand(
        flag=draw(ident),
        environment=draw(ident) if scoped else draw(st.none() | ident),
        project=draw(st.none() | ident),
        changes=changes,
        comment=draw(st.none() | free),
        approval=draw(st.booleans()),
        reviewers=tuple(draw(st.lists(reviewer, max_size=3))),
        schedule=draw(st.none() | schedule),
    )


def test_every_kind_has_a_strategy() -> None:
    assert set(INTENTS) == set(it.INTENT_MODELS)


@FAST
@given(change_command(st.one_of(*INTENTS.values())))
def test_canonical_text_parses_back_to_the_same_command(cmd: it.ChangeCommand) -> None:
    text = canonical(cmd)
    assert parse(text) == cmd, text
