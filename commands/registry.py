"""The vocabulary: every verb with its syntax, description, examples and instruction kinds.

One registry feeds the parser (which verb a text starts with, the usage in its errors), the help
and the example list, so they cannot drift apart. Every example refers to the demo project
(``commands/data/demo.json``): paste any into ``python -m commands explain`` and it works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["env", "flag", "none"]


@dataclass(frozen=True)
class Example:
    """An example command: ``kind`` is the instruction kind it shows (None: not a change)."""

    text: str
    kind: str | None
    description: str


@dataclass(frozen=True)
class Verb:
    """A verb (or verb phrase, like ``add rule``) of the command language.

    ``scope``: ``env`` verbs take ``<flag> <env>``, ``flag`` verbs take ``<flag>``; ``none`` verbs
    have their own syntax. ``kinds`` are the instruction kinds the verb can produce.
    """

    name: str
    group: str
    scope: Scope
    syntax: str
    summary: str
    kinds: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    aliases: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def usage(self) -> str:
        """The one-line usage shown with errors."""
        return self.syntax


def _ex(text: str, kind: str | None, description: str) -> Example:
    return Example(text, kind, description)


GROUPS: dict[str, str] = {
    "basics": "Turn flags on and off, look at them",
    "targets": "Individual targets",
    "serving": "What a flag serves: default rule, rollouts, off variation, event tracking",
    "rules": "Targeting rules and their clauses",
    "prerequisites": "Prerequisite flags",
    "variations": "Variations and default variations",
    "settings": "Flag settings: tags, custom properties, maintainer, client-side, name",
    "lifecycle": "Archive, deprecate, restore, delete",
    "expert": "Escape hatches: raw request bodies as JSON",
    "reserved": "Approvals, reminders, schedules, links, accounts, settings, undo",
}

VERBS: tuple[Verb, ...] = (
    # --- basics -------------------------------------------------------------------------------
    Verb(
        "on",
        "basics",
        "env",
        "on <flag> [<env>]",
        "Turn targeting on (in the channel's default environment when none is given).",
        ("turnFlagOn",),
        (
            _ex("on new-checkout test", "turnFlagOn", "Turn targeting on in test"),
            _ex(
                'on new-checkout production --approval --reviewers <@U0BOB> -m "Launch day"',
                "turnFlagOn",
                "Ask for approval to turn it on in production, notifying a reviewer",
            ),
        ),
        aliases=("enable",),
    ),
    Verb(
        "off",
        "basics",
        "env",
        "off <flag> [<env>]",
        "Turn targeting off (serve the off variation).",
        ("turnFlagOff",),
        (
            _ex("off new-checkout in production", "turnFlagOff", "Turn targeting off in production"),
            _ex("off holiday-banner production in 2 hours", "turnFlagOff", "Turn it off two hours from now"),
        ),
        aliases=("disable",),
    ),
    Verb(
        "show",
        "basics",
        "none",
        "show <flag> [<env>]",
        "Show a flag: state, targets, rules, variations.",
        examples=(_ex("show pricing-page production", None, "The pricing page flag in production"),),
    ),
    Verb(
        "list",
        "basics",
        "none",
        "list [<query>] [--tag <tag>]",
        "List flags, by text and/or tag.",
        examples=(_ex("list checkout --tag web", None, "Flags matching 'checkout' tagged web"),),
    ),
    Verb(
        "history",
        "basics",
        "none",
        "history <flag> [<env>]",
        "What changed on a flag, wherever it was changed (LaunchDarkly's audit log), newest first.",
        examples=(
            _ex("history new-checkout production", None, "Changes to new-checkout in production"),
            _ex("history pricing-page", None, "Changes to pricing-page in every environment"),
        ),
        aliases=("log", "recent"),
    ),
    Verb(
        "eval",
        "basics",
        "none",
        "eval <flag> <env> [<kind>:]<key> [<attribute>=<value>...] [<kind>:<key> ...]",
        "What a context gets from a flag, and why (LaunchDarkly evaluates it).",
        examples=(
            _ex("eval new-checkout test user:alice", None, "What alice gets, and why"),
            _ex(
                "eval pricing-page production user:jo country=DE plan=pro",
                None,
                "A user with attributes (numbers and true/false are typed; quote to keep text)",
            ),
            _ex(
                "eval pricing-page test user:sam email=sam@example.com organization:acme tier=3",
                None,
                "A multi-context: a user and their organization",
            ),
        ),
        aliases=("evaluate",),
        notes=("args: (<the context, as LaunchDarkly's JSON>,)",),
    ),
    Verb(
        "help",
        "basics",
        "none",
        "help [<topic>]",
        "Help on a verb, a group, an instruction kind, or: options, schedule, variations, clauses.",
        examples=(_ex("help add rule", None, "How to add a targeting rule"),),
    ),
    # --- targets ------------------------------------------------------------------------------
    Verb(
        "target",
        "targets",
        "env",
        "target <flag> <env> [<kind>:]<key>[,<key>...] ... -> <variation>",
        "Serve a variation to individual contexts (keys without a kind are users).",
        ("addTargets",),
        (
            _ex(
                "target new-checkout test user:carol,dave device:ios-qa-2 -> true",
                "addTargets",
                "Serve true to users carol and dave and to device ios-qa-2",
            ),
        ),
    ),
    Verb(
        "untarget",
        "targets",
        "env",
        "untarget <flag> <env> [<kind>:]<key>[,<key>...] ... [from <variation>]",
        "Stop targeting individual contexts (from the variation that targets them, unless given).",
        ("removeTargets",),
        (
            _ex(
                "untarget new-checkout test user:alice from true",
                "removeTargets",
                "Stop serving true to alice",
            ),
            _ex(
                "untarget new-checkout test device:ios-qa-1",
                "removeTargets",
                "Stop targeting device ios-qa-1",
            ),
        ),
    ),
    Verb(
        "clear targets",
        "targets",
        "env",
        "clear targets <flag> <env> <variation>",
        "Remove every individual target (all kinds) of a variation.",
        ("clearTargets",),
        (_ex("clear targets new-checkout test true", "clearTargets", "No individual targets for true"),),
    ),
    Verb(
        "replace targets",
        "targets",
        "env",
        "replace targets <flag> <env> [<kind>:]<key>... -> <variation> "
        "[[<kind>:]<key>... -> <variation>]... | none",
        "Replace all individual targets.",
        ("replaceTargets",),
        (
            _ex(
                "replace targets new-checkout test user:alice,bob -> true device:ios-qa-1 -> false",
                "replaceTargets",
                "Exactly these targets and no others",
            ),
        ),
    ),
    Verb(
        "target-users",
        "targets",
        "env",
        "target-users <flag> <env> <key>[,<key>...] -> <variation>",
        "Legacy user targets (addUserTargets); prefer `target`.",
        ("addUserTargets",),
        (
            _ex(
                "target-users new-checkout production carol -> true",
                "addUserTargets",
                "Serve true to user carol (legacy instruction)",
            ),
        ),
    ),
    Verb(
        "untarget-users",
        "targets",
        "env",
        "untarget-users <flag> <env> <key>[,<key>...] [from <variation>]",
        "Legacy: stop targeting users (removeUserTargets); prefer `untarget`.",
        ("removeUserTargets",),
        (
            _ex(
                "untarget-users new-checkout production qa-bot from true",
                "removeUserTargets",
                "Stop serving true to user qa-bot (legacy instruction)",
            ),
        ),
    ),
    Verb(
        "clear user-targets",
        "targets",
        "env",
        "clear user-targets <flag> <env> <variation>",
        "Legacy: remove the user targets of a variation (clearUserTargets); prefer `clear targets`.",
        ("clearUserTargets",),
        (
            _ex(
                "clear user-targets new-checkout production true",
                "clearUserTargets",
                "No user targets for true (legacy instruction)",
            ),
        ),
    ),
    Verb(
        "replace user-targets",
        "targets",
        "env",
        "replace user-targets <flag> <env> <key>[,<key>...] -> <variation> [<keys> -> <variation>]... | none",
        "Legacy: replace all user targets (replaceUserTargets); prefer `replace targets`.",
        ("replaceUserTargets",),
        (
            _ex(
                "replace user-targets new-checkout test alice,bob -> true carol -> false",
                "replaceUserTargets",
                "Exactly these user targets (legacy instruction)",
            ),
        ),
    ),
    # --- serving ------------------------------------------------------------------------------
    Verb(
        "serve",
        "serving",
        "env",
        "serve <flag> <env> [rule <rule>] <variation> | <pct>% <variation> ... "
        "[by <attribute>] [kind <context-kind>]",
        "What the default rule (or a rule) serves: one variation, or a percentage rollout.",
        ("updateFallthroughVariationOrRollout", "updateRuleVariationOrRollout"),
        (
            _ex(
                "serve new-checkout production true",
                "updateFallthroughVariationOrRollout",
                "Default rule serves true",
            ),
            _ex(
                "rollout banner-color test 10% blue 90% green",
                "updateFallthroughVariationOrRollout",
                "Default rule: 10% blue, 90% green",
            ),
            _ex(
                "rollout banner-color production 33.333% blue 33.333% green 33.334% red by email kind user",
                "updateFallthroughVariationOrRollout",
                "A three-way rollout bucketed by email",
            ),
            _ex(
                'serve pricing-page test rule "Beta testers" v1',
                "updateRuleVariationOrRollout",
                "The Beta testers rule serves v1",
            ),
            _ex(
                "rollout pricing-page production rule 2 50% v2 50% v1 by country",
                "updateRuleVariationOrRollout",
                "Rule 2 serves a 50/50 rollout by country",
            ),
        ),
        aliases=("rollout",),
    ),
    Verb(
        "off-variation",
        "serving",
        "env",
        "off-variation <flag> <env> <variation>",
        "What the flag serves while targeting is off.",
        ("updateOffVariation",),
        (_ex("off-variation banner-color production red", "updateOffVariation", "Serve red while off"),),
    ),
    Verb(
        "track-events",
        "serving",
        "env",
        "track-events <flag> <env> [rule <rule> | default] on|off",
        "Send detailed events for all rules, one rule, or the default rule.",
        ("updateTrackEvents", "updateRuleTrackEvents", "updateTrackEventsFallthrough"),
        (
            _ex("track-events pricing-page test on", "updateTrackEvents", "Track events for every rule"),
            _ex(
                'track-events pricing-page test rule "Internal staff" off',
                "updateRuleTrackEvents",
                "Stop tracking events for one rule",
            ),
            _ex(
                "track-events pricing-page production default on",
                "updateTrackEventsFallthrough",
                "Track events for the default rule",
            ),
        ),
    ),
    # --- rules --------------------------------------------------------------------------------
    Verb(
        "add rule",
        "rules",
        "env",
        "add rule <flag> <env> [named <text>] [if <clause> [and <clause>]...] serve <serving> "
        "[before rule <rule>] [track-events on|off]",
        "Add a targeting rule (at the end, or before another rule).",
        ("addRule",),
        (
            _ex(
                'add rule pricing-page test named "Canada" if country in CA serve v2 '
                "before rule 1 track-events on",
                "addRule",
                "A first rule for Canada, with event tracking",
            ),
            _ex(
                "add rule banner-color test if organization.tier >= 3 and email not ends-with @example.com "
                "serve 50% blue 50% red by key",
                "addRule",
                "A rollout rule with two clauses",
            ),
            _ex(
                "add rule new-checkout test if in segment beta-testers serve true",
                "addRule",
                "Serve true to a segment",
            ),
            _ex(
                "add rule pricing-page production if signup-date before 2025-01-01T00:00:00Z "
                "and app-version semver< 2.0.0 serve v1",
                "addRule",
                "Dates and semantic versions",
            ),
        ),
    ),
    Verb(
        "remove rule",
        "rules",
        "env",
        "remove rule <flag> <env> <rule>",
        "Remove a targeting rule (by position or exact description).",
        ("removeRule",),
        (
            _ex(
                'remove rule pricing-page test "Internal staff"',
                "removeRule",
                "Remove the Internal staff rule",
            ),
        ),
    ),
    Verb(
        "reorder rules",
        "rules",
        "env",
        "reorder rules <flag> <env> <rule>,<rule>,...",
        "Put every rule in a new order (name each rule once).",
        ("reorderRules",),
        (_ex("reorder rules pricing-page test 3,1,2", "reorderRules", "Rule 3 first, then 1, then 2"),),
    ),
    Verb(
        "replace rules",
        "rules",
        "env",
        "replace rules <flag> <env> rule [named <text>] [if <clauses>] serve <serving> [track-events on|off] "
        "[rule ...]... | none",
        "Replace all targeting rules.",
        ("replaceRules",),
        (
            _ex(
                'replace rules pricing-page test rule named "Staff" if email ends-with @example.com serve v2 '
                "track-events on rule if country in US,CA serve 50% v2 50% v1",
                "replaceRules",
                "Exactly two rules",
            ),
        ),
    ),
    Verb(
        "rename rule",
        "rules",
        "env",
        "rename rule <flag> <env> <rule> to <text>",
        "Change a rule's description.",
        ("updateRuleDescription",),
        (
            _ex(
                'rename rule pricing-page test 2 to "EU and UK customers"',
                "updateRuleDescription",
                "Rename rule 2",
            ),
        ),
    ),
    Verb(
        "add clause",
        "rules",
        "env",
        "add clause <flag> <env> rule <rule> [if] <clause> [and <clause>]...",
        "Add clauses to a rule (all clauses of a rule must match).",
        ("addClauses",),
        (
            _ex(
                'add clause pricing-page test rule "EU customers" if plan not in trial',
                "addClauses",
                "The EU rule now also excludes the trial plan",
            ),
        ),
        aliases=("add clauses",),
    ),
    Verb(
        "remove clause",
        "rules",
        "env",
        "remove clause <flag> <env> rule <rule> clause <clause>[,<clause>...]",
        "Remove clauses from a rule (by position or attribute).",
        ("removeClauses",),
        (
            _ex(
                'remove clause pricing-page test rule "EU customers" clause plan',
                "removeClauses",
                "Drop the plan clause",
            ),
        ),
        aliases=("remove clauses",),
    ),
    Verb(
        "add values",
        "rules",
        "env",
        "add values <flag> <env> rule <rule> clause <clause> <value>[,<value>...]",
        "Add values to a clause.",
        ("addValuesToClause",),
        (
            _ex(
                'add values pricing-page test rule "EU customers" clause country ES,IT',
                "addValuesToClause",
                "Spain and Italy join the EU rule",
            ),
        ),
    ),
    Verb(
        "remove values",
        "rules",
        "env",
        "remove values <flag> <env> rule <rule> clause <clause> <value>[,<value>...]",
        "Remove values from a clause.",
        ("removeValuesFromClause",),
        (
            _ex(
                "remove values pricing-page production rule 2 clause country NL",
                "removeValuesFromClause",
                "The Netherlands leave rule 2",
            ),
        ),
    ),
    Verb(
        "update clause",
        "rules",
        "env",
        "update clause <flag> <env> rule <rule> clause <clause> to <clause-spec>",
        "Rewrite a clause.",
        ("updateClause",),
        (
            _ex(
                "update clause pricing-page test rule 3 clause 2 to organization.tier >= 3",
                "updateClause",
                "Internal staff now needs tier 3",
            ),
        ),
    ),
    # --- prerequisites ------------------------------------------------------------------------
    Verb(
        "add prereq",
        "prerequisites",
        "env",
        "add prereq <flag> <env> <prerequisite-flag> <variation>",
        "Require another flag to serve a variation first.",
        ("addPrerequisite",),
        (
            _ex(
                "add prereq banner-color test new-checkout true",
                "addPrerequisite",
                "banner-color needs new-checkout serving true",
            ),
        ),
        aliases=("add prerequisite",),
    ),
    Verb(
        "remove prereq",
        "prerequisites",
        "env",
        "remove prereq <flag> <env> <prerequisite-flag>",
        "Drop a prerequisite.",
        ("removePrerequisite",),
        (
            _ex(
                "remove prereq express-shipping test new-checkout",
                "removePrerequisite",
                "express-shipping no longer needs new-checkout",
            ),
        ),
        aliases=("remove prerequisite",),
    ),
    Verb(
        "update prereq",
        "prerequisites",
        "env",
        "update prereq <flag> <env> <prerequisite-flag> <variation>",
        "Change the variation a prerequisite must serve.",
        ("updatePrerequisite",),
        (
            _ex(
                "update prereq express-shipping production new-checkout false",
                "updatePrerequisite",
                "Now requires new-checkout to serve false",
            ),
        ),
        aliases=("update prerequisite",),
    ),
    Verb(
        "replace prereqs",
        "prerequisites",
        "env",
        "replace prereqs <flag> <env> <prerequisite-flag> <variation>"
        "[, <prerequisite-flag> <variation>]... | none",
        "Replace all prerequisites.",
        ("replacePrerequisites",),
        (
            _ex(
                "replace prereqs express-shipping test new-checkout true, holiday-banner false",
                "replacePrerequisites",
                "Exactly these two prerequisites",
            ),
        ),
        aliases=("replace prerequisites",),
    ),
    # --- variations ---------------------------------------------------------------------------
    Verb(
        "add variation",
        "variations",
        "flag",
        "add variation <flag> <value> [named <text>] [description <text>]",
        "Add a variation (its value is typed like the flag's other values).",
        ("addVariation",),
        (
            _ex(
                'add variation banner-color purple named Purple description "For the spring sale"',
                "addVariation",
                "A fourth color",
            ),
        ),
    ),
    Verb(
        "remove variation",
        "variations",
        "flag",
        "remove variation <flag> <variation>",
        "Remove a variation.",
        ("removeVariation",),
        (
            _ex(
                "remove variation banner-color red",
                "removeVariation",
                "No more red (refused while red is an off variation, as in the demo)",
            ),
        ),
    ),
    Verb(
        "update variation",
        "variations",
        "flag",
        "update variation <flag> <variation> [value <value>] [named <text>] [description <text>]",
        "Change a variation's value, name or description.",
        ("updateVariation",),
        (
            _ex(
                "update variation banner-color #3 value crimson named Crimson",
                "updateVariation",
                "The third variation becomes crimson",
            ),
        ),
    ),
    Verb(
        "default-variations",
        "variations",
        "flag",
        "default-variations <flag> [on <variation>] [off <variation>]",
        "The variations new environments serve when on and when off.",
        ("updateDefaultVariation",),
        (
            _ex(
                "default-variations banner-color on blue off red",
                "updateDefaultVariation",
                "New environments serve blue when on, red when off",
            ),
        ),
        aliases=("defaults",),
    ),
    # --- settings -----------------------------------------------------------------------------
    Verb(
        "add tags",
        "settings",
        "flag",
        "add tags <flag> <tag>[,<tag>...]",
        "Add tags.",
        ("addTags",),
        (_ex("add tags new-checkout beta,q3", "addTags", "Tag it beta and q3"),),
        aliases=("add tag", "tag"),
    ),
    Verb(
        "remove tags",
        "settings",
        "flag",
        "remove tags <flag> <tag>[,<tag>...]",
        "Remove tags.",
        ("removeTags",),
        (_ex("remove tags new-checkout web", "removeTags", "Untag web"),),
        aliases=("remove tag", "untag"),
    ),
    Verb(
        "add property",
        "settings",
        "flag",
        "add property <flag> <key> <value>[,<value>...] [named <text>]",
        "Add values to a custom property (named after its key unless it exists or you name it).",
        ("addCustomProperties",),
        (
            _ex(
                "add property new-checkout jira.issues SHOP-102,SHOP-103",
                "addCustomProperties",
                "Link two more Jira issues",
            ),
            _ex(
                'add property banner-color owner.team growth named "Owning team"',
                "addCustomProperties",
                "A new custom property",
            ),
        ),
    ),
    Verb(
        "replace property",
        "settings",
        "flag",
        "replace property <flag> <key> <value>[,<value>...] [named <text>]",
        "Replace the values of a custom property.",
        ("replaceCustomProperties",),
        (
            _ex(
                'replace property new-checkout jira.issues SHOP-200 named "Jira issues"',
                "replaceCustomProperties",
                "Only SHOP-200",
            ),
        ),
    ),
    Verb(
        "remove property",
        "settings",
        "flag",
        "remove property <flag> <key> <value>[,<value>...]",
        "Remove values from a custom property (the property goes when its last value does).",
        ("removeCustomProperties",),
        (
            _ex(
                "remove property new-checkout jira.issues SHOP-101",
                "removeCustomProperties",
                "Unlink SHOP-101",
            ),
        ),
    ),
    Verb(
        "maintainer",
        "settings",
        "flag",
        "maintainer <flag> <email>|<member-id>|team:<team-key>",
        "Set the maintainer: a member (by email or id) or a team.",
        ("updateMaintainerMember", "updateMaintainerTeam"),
        (
            _ex("maintainer new-checkout bob@example.com", "updateMaintainerMember", "Bob maintains it"),
            _ex(
                "maintainer banner-color team:growth", "updateMaintainerTeam", "The growth team maintains it"
            ),
        ),
    ),
    Verb(
        "remove maintainer",
        "settings",
        "flag",
        "remove maintainer <flag>",
        "The flag has no maintainer.",
        ("removeMaintainer",),
        (_ex("remove maintainer holiday-banner", "removeMaintainer", "Nobody maintains it"),),
    ),
    Verb(
        "expose",
        "settings",
        "flag",
        "expose <flag> mobile|client-side[,...]",
        "Make the flag available to mobile SDKs and/or client-side (JavaScript) SDKs.",
        ("turnOnClientSideAvailability",),
        (_ex("expose new-checkout mobile", "turnOnClientSideAvailability", "Mobile SDKs can use it"),),
    ),
    Verb(
        "hide",
        "settings",
        "flag",
        "hide <flag> mobile|client-side[,...]",
        "Make the flag unavailable to mobile and/or client-side SDKs.",
        ("turnOffClientSideAvailability",),
        (
            _ex(
                "hide new-checkout client-side",
                "turnOffClientSideAvailability",
                "Client-side SDKs can no longer use it",
            ),
        ),
    ),
    Verb(
        "rename",
        "settings",
        "flag",
        "rename <flag> <name>",
        "Change the flag's name (not its key).",
        ("updateName",),
        (_ex('rename new-checkout "New checkout (2025)"', "updateName", "A new display name"),),
    ),
    Verb(
        "describe",
        "settings",
        "flag",
        "describe <flag> <text>",
        "Change the flag's description.",
        ("updateDescription",),
        (
            _ex(
                'describe banner-color "Color of the sitewide promotional banner"',
                "updateDescription",
                "A new description",
            ),
        ),
    ),
    Verb(
        "make permanent",
        "settings",
        "flag",
        "make permanent <flag>",
        "Mark the flag permanent.",
        ("makeFlagPermanent",),
        (_ex("make permanent holiday-banner", "makeFlagPermanent", "No more cleanup reminders"),),
    ),
    Verb(
        "make temporary",
        "settings",
        "flag",
        "make temporary <flag>",
        "Mark the flag temporary.",
        ("makeFlagTemporary",),
        (_ex("make temporary banner-color", "makeFlagTemporary", "It should be cleaned up one day"),),
    ),
    # --- lifecycle ----------------------------------------------------------------------------
    Verb(
        "archive",
        "lifecycle",
        "flag",
        "archive <flag>",
        "Archive the flag (it can be restored).",
        ("archiveFlag",),
        (_ex("archive holiday-banner", "archiveFlag", "Retire the holiday banner"),),
    ),
    Verb(
        "restore",
        "lifecycle",
        "flag",
        "restore <flag>",
        "Restore an archived flag.",
        ("restoreFlag",),
        (_ex("restore holiday-banner", "restoreFlag", "Bring it back from the archive"),),
    ),
    Verb(
        "deprecate",
        "lifecycle",
        "flag",
        "deprecate <flag>",
        "Deprecate the flag (hide it from live flags).",
        ("deprecateFlag",),
        (_ex("deprecate holiday-banner", "deprecateFlag", "Hide it from the live list"),),
    ),
    Verb(
        "undeprecate",
        "lifecycle",
        "flag",
        "undeprecate <flag>",
        "Restore a deprecated flag.",
        ("restoreDeprecatedFlag",),
        (_ex("undeprecate holiday-banner", "restoreDeprecatedFlag", "Live again"),),
    ),
    Verb(
        "delete",
        "lifecycle",
        "flag",
        "delete <flag> confirm <flag>",
        "Delete the flag for good. Type its key twice: this cannot be undone.",
        ("deleteFlag",),
        (_ex("delete holiday-banner confirm holiday-banner", "deleteFlag", "Gone for good"),),
    ),
    # --- expert -------------------------------------------------------------------------------
    Verb(
        "raw",
        "expert",
        "none",
        "raw <flag> [<env>] <json: instructions array, or a whole semantic patch>",
        "Send semantic-patch instructions written as JSON (validated first).",
        examples=(_ex('raw new-checkout test [{"kind": "turnFlagOn"}]', None, "Raw instructions"),),
    ),
    Verb(
        "json-patch",
        "expert",
        "none",
        "json-patch <flag> <json array of RFC 6902 operations>",
        "A JSON patch on the flag (`test` operations honoured), previewed and applied like any change.",
        examples=(
            _ex(
                'json-patch new-checkout [{"op": "replace", "path": "/description", "value": "New"}]',
                None,
                "Replace the description by JSON patch",
            ),
            _ex(
                'json-patch new-checkout [{"op": "test", "path": "/environments/test/on", "value": true}, '
                '{"op": "add", "path": "/environments/test/targets/0/values/-", "value": "carol"}]',
                None,
                "Target carol in test, only if targeting is on",
            ),
        ),
    ),
    Verb(
        "merge-patch",
        "expert",
        "none",
        "merge-patch <flag> <json object>",
        "A JSON merge patch on the flag (RFC 7386), previewed and applied like any change.",
        examples=(
            _ex(
                'merge-patch new-checkout {"description": "New"}',
                None,
                "Replace the description by merge patch",
            ),
        ),
    ),
    Verb(
        "link-patch",
        "expert",
        "none",
        "link-patch <flag> <link-id> <json array of RFC 6902 operations>",
        "A JSON patch on one of the flag's links.",
        examples=(
            _ex(
                'link-patch new-checkout launch-thread [{"op": "replace", "path": "/title", '
                '"value": "Launch thread"}]',
                None,
                "Retitle a flag link",
            ),
        ),
    ),
    Verb(
        "project-patch",
        "expert",
        "none",
        "project-patch <json array of RFC 6902 operations>",
        "A JSON patch on the project (`--project`, default: the channel's), previewed and applied.",
        examples=(
            _ex(
                'project-patch [{"op": "add", "path": "/tags/-", "value": "checkout"}]',
                None,
                "Tag the project",
            ),
        ),
    ),
    # --- reserved: parsed now, executed by the bot ---------------------------------------------
    Verb(
        "approvals",
        "reserved",
        "none",
        "approvals [<flag> [<env>]]",
        "Pending approval requests (all, for a flag, or a flag in an environment).",
        examples=(_ex("approvals new-checkout production", None, "Approval requests for new-checkout"),),
        notes=("args: ()",),
    ),
    Verb(
        "remind",
        "reserved",
        "none",
        "remind <flag> [<env>] in <duration> | at <time> [<text>]",
        "Remind this channel about a flag later.",
        examples=(
            _ex(
                'remind holiday-banner in 2 weeks "remove the holiday banner"',
                None,
                "A reminder in two weeks",
            ),
        ),
        notes=('args: ("in"|"at", <duration or time>, <text>?)',),
    ),
    Verb(
        "reminders",
        "reserved",
        "none",
        "reminders [cancel <id>]",
        "List or cancel reminders.",
        examples=(_ex("reminders", None, "Pending reminders"),),
        notes=('args: () or ("cancel", <id>)',),
    ),
    Verb(
        "scheduled",
        "reserved",
        "none",
        "scheduled [<flag> [<env>]] | scheduled cancel <id>",
        "Scheduled changes, or cancel one.",
        examples=(_ex("scheduled new-checkout production", None, "Changes scheduled for new-checkout"),),
        notes=('args: () or ("cancel", <id>)',),
    ),
    Verb(
        "link",
        "reserved",
        "none",
        "link <flag> [<title>]",
        "Link this conversation to a flag.",
        examples=(_ex('link new-checkout "Launch thread"', None, "Link this thread to new-checkout"),),
        notes=("args: (<title>?)",),
    ),
    Verb(
        "link edit",
        "reserved",
        "none",
        "link edit <flag> <link-id> [title <text>] [description <text>]",
        "Edit a flag link.",
        examples=(_ex('link edit new-checkout launch-thread title "Launch"', None, "Retitle a link"),),
        notes=('args: (<link-id>, "title"|"description", <text>, ...)',),
    ),
    Verb(
        "link-account",
        "reserved",
        "none",
        "link-account",
        "Link your LaunchDarkly account to Slack.",
        examples=(_ex("link-account", None, "Act as your own LaunchDarkly member"),),
    ),
    Verb(
        "unlink-account",
        "reserved",
        "none",
        "unlink-account",
        "Unlink your LaunchDarkly account.",
        examples=(_ex("unlink-account", None, "Stop acting as your member"),),
    ),
    Verb(
        "config",
        "reserved",
        "none",
        "config [<setting> [<value>]]",
        "Show or change this channel's settings.",
        examples=(_ex("config project demo", None, "Use the demo project in this channel"),),
        notes=("args: (<setting>?, <value>?)",),
    ),
    Verb(
        "undo",
        "reserved",
        "none",
        "undo [<change-id>]",
        "Undo your last change (or the one named).",
        examples=(_ex("undo", None, "Undo the last change"),),
        notes=("args: (<change-id>?)",),
    ),
    Verb(
        "subscribe",
        "reserved",
        "none",
        "subscribe [<flag> | tag:<tag> | env:<env> | all] [--project <key>]",
        "Post every change of a flag, a tag's flags, an environment or all flags in this channel, "
        "wherever it is made.",
        examples=(
            _ex("subscribe new-checkout", None, "Changes of new-checkout, in every environment"),
            _ex("subscribe env:production", None, "Every flag change in production"),
        ),
        notes=("args: (<target>?)",),
    ),
    Verb(
        "subscriptions",
        "reserved",
        "none",
        "subscriptions",
        "This channel's subscriptions, each with Unsubscribe.",
        examples=(_ex("subscriptions", None, "What this channel follows"),),
    ),
    Verb(
        "unsubscribe",
        "reserved",
        "none",
        "unsubscribe [<flag> | tag:<tag> | env:<env> | all] [--project <key>]",
        "Stop posting what `subscribe` posts here.",
        examples=(_ex("unsubscribe new-checkout", None, "No more changes of new-checkout here"),),
        notes=("args: (<target>?)",),
    ),
)

#: name -> verb, including aliases.
VERB_INDEX: dict[str, Verb] = {}
for _verb in VERBS:
    for _name in (_verb.name, *_verb.aliases):
        if _name in VERB_INDEX:
            raise RuntimeError(f"verb {_name!r} is registered twice")
        VERB_INDEX[_name] = _verb

#: The first words of multi-word verbs (``add`` of ``add rule``): these alone are not verbs.
VERB_HEADS: frozenset[str] = frozenset(name.split()[0] for name in VERB_INDEX if " " in name)

OPTIONS_HELP = (
    ("--project <key>, -p <key>", "the LaunchDarkly project (default: the channel's)"),
    ("--env <key>, -e <key>", "the environment, instead of writing it after the flag"),
    ("--comment <text>, -m <text>", "a comment for the audit log"),
    ("--approval", "ask for approval instead of applying"),
    ("--reviewers @who,...", "reviewers to notify (Slack mentions, emails or member ids)"),
    ("--tag <tag>", "`list` only: flags with this tag"),
)


def verb(name: str) -> Verb:
    """The verb registered under ``name`` (or an alias of it).

    Raises:
        KeyError: no such verb.
    """
    return VERB_INDEX[name]


def examples() -> list[Example]:
    """Every example of every verb, in registry order."""
    return [example for v in VERBS for example in v.examples]


def verbs_for_kind(kind: str) -> list[Verb]:
    """The verbs that can produce instruction ``kind``."""
    return [v for v in VERBS if kind in v.kinds]
