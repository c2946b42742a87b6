"""Whether a person's LaunchDarkly roles allow an action on a resource, as LaunchDarkly documents
its role policies (pure: no I/O; ``bot.identity.roles`` reads the member and their roles).

- A **statement** has an ``effect`` (``allow``/``deny``), ``resources`` or ``notResources``, and
  ``actions`` or ``notActions``. ``*`` is a wildcard in names and actions (``update*``).
- A **resource specifier** is ``proj/<p>[;filter]:env/<e>[;filter]:flag/<f>[;filter]``. A filter
  is tags (``flag/*;tag1,tag2``: the resource carries *every* tag named; an "or" is two statements,
  as LaunchDarkly's "Using tags" page says) or properties (``env/*;{critical:true}``). A bare ``*``
  names every resource. ``${roleAttribute/<key>}`` stands for each value the role's assignment
  gives ``<key>``.
- Within **one role** a matching deny wins over any allow, and no matching statement means no
  access. Across **several roles** (the built-in one, custom roles, the teams' roles) permissions
  add up: the person may if any role allows.

Decided where the documents are silent, always towards refusing:
- a statement using a role attribute its assignment does not give, or a filter flagops does not
  read (``view:``...), never allows and, in a deny, always matches;
- a flag-level resource (``env/*``) matches only specifiers whose environment part matches every
  environment (``env/*``), as LaunchDarkly's roles give flag-level actions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Built-in (base) roles that may write flags and projects. ``reader`` and ``no_access`` may not;
#: ``writer`` may do everything but account settings (members, billing...); ``admin`` and ``owner``
#: everything. flagops only checks flag and project actions, where writer, admin and owner agree.
WRITE_ROLES = frozenset({"writer", "admin", "owner"})
BUILT_IN_ROLES = frozenset({"reader", "writer", "admin", "owner", "no_access"})
_ATTRIBUTE = re.compile(r"\$\{roleAttribute/([^}]+)\}")


class Statement(BaseModel):
    """One policy statement (LaunchDarkly's ``Statement``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    effect: Literal["allow", "deny"]
    resources: list[str] | None = None
    notResources: list[str] | None = None
    actions: list[str] | None = None
    notActions: list[str] | None = None


class CustomRole(BaseModel):
    """A custom role as ``GET /api/v2/roles/{key}`` answers it (the fields the check reads)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str
    name: str | None = None
    policy: list[Statement] = Field(default_factory=list)


@dataclass(frozen=True)
class RoleGrant:
    """One role a person holds, with the role attributes its assignment gives."""

    name: str
    """How the answer names it: ``writer``, ``custom role test-targeter``, ``team qa: ...``."""
    statements: tuple[Statement, ...]
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)


def built_in(role: str) -> RoleGrant:
    """The built-in role's grant: everything for writers and above, nothing for the rest."""
    if role in WRITE_ROLES:
        everything = Statement(effect="allow", resources=["*"], actions=["*"])
        return RoleGrant(role, (everything,))
    return RoleGrant(role, ())


@dataclass(frozen=True)
class Target:
    """A resource as the check sees it: its keys, and the tags and properties filters read."""

    project: str
    environment: str | None = None  # None: the flag-level resource (every environment)
    flag: str | None = None  # None: the project itself
    # None: not known here (a filter on it then cannot allow, and a deny with it applies).
    project_tags: frozenset[str] | None = None
    environment_tags: frozenset[str] | None = frozenset()
    environment_properties: Mapping[str, object] | None = field(default_factory=dict)
    flag_tags: frozenset[str] | None = frozenset()

    def segments(self) -> list[tuple[str, str, frozenset[str] | None, Mapping[str, object] | None]]:
        """``(type, name, tags, properties)`` from the project down."""
        out: list[tuple[str, str, frozenset[str] | None, Mapping[str, object] | None]] = [
            ("proj", self.project, self.project_tags, {})
        ]
        if self.flag is not None:
            out.append(("env", self.environment or "*", self.environment_tags, self.environment_properties))
            out.append(("flag", self.flag, self.flag_tags, {}))
        return out


# --- matching ---------------------------------------------------------------------------------------


def _glob(pattern: str, name: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, name) is not None


def _split_outside_braces(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    depth, current = 0, ""
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _property_value(text: str) -> object:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text.strip()


def _filter_matches(
    spec_filter: str, tags: frozenset[str] | None, properties: Mapping[str, object] | None
) -> bool | None:
    """Whether the resource passes a ``;filter``: True/False, or None for a filter not read here
    (or about tags or properties not known)."""
    spec_filter = spec_filter.strip()
    if spec_filter.startswith("{") and spec_filter.endswith("}"):
        if properties is None:
            return None
        for pair in spec_filter[1:-1].split(","):
            key, sep, value = pair.partition(":")
            if not sep:
                return None
            if properties.get(key.strip()) != _property_value(value):
                return False
        return True
    if ":" in spec_filter:
        return None  # e.g. ``view:...``: not read by flagops
    if tags is None:
        return None
    wanted = [t.strip().lower() for t in spec_filter.split(",") if t.strip()]
    lowered = {t.lower() for t in tags}
    return all(any(_glob(w, t) for t in lowered) for w in wanted)


def _expand(specifier: str, attributes: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The specifier with each role attribute replaced by each of its values; None when an
    attribute it uses is not given."""
    names = _ATTRIBUTE.findall(specifier)
    expanded = [specifier]
    for name in dict.fromkeys(names):
        values = attributes.get(name)
        if not values:
            return None
        expanded = [s.replace(f"${{roleAttribute/{name}}}", v) for s in expanded for v in values]
    return expanded


def _specifier_matches(specifier: str, target: Target) -> bool | None:
    """Whether one (expanded) specifier names the target: True/False, None when unreadable."""
    if specifier.strip() == "*":
        return True
    segments = _split_outside_braces(specifier, ":")
    wanted = target.segments()
    if len(segments) != len(wanted):
        return False
    unknown = False
    for text, (kind, name, tags, properties) in zip(segments, wanted, strict=True):
        head, _, spec_filter = text.partition(";")
        spec_kind, slash, spec_name = head.partition("/")
        if not slash or spec_kind != kind:
            return False
        if kind == "env" and target.environment is None and spec_name != "*":
            return False  # a flag-level action: only statements over every environment
        if not _glob(spec_name, name):
            return False
        if spec_filter:
            passes = _filter_matches(spec_filter, tags, properties)
            if passes is False:
                return False
            unknown = unknown or passes is None
    return None if unknown else True


def _resource_matches(specifiers: Iterable[str], target: Target, grant: RoleGrant, effect: str) -> bool:
    """Whether any specifier names the target; an unreadable one counts as a match in a deny and as
    no match in an allow (refusing is the safe reading)."""
    for raw in specifiers:
        expanded = _expand(raw, grant.attributes)
        if expanded is None:
            if effect == "deny":
                return True
            continue
        for specifier in expanded:
            result = _specifier_matches(specifier, target)
            if result is True or (result is None and effect == "deny"):
                return True
    return False


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(_glob(pattern, action) for pattern in patterns)


def statement_applies(statement: Statement, action: str, target: Target, grant: RoleGrant) -> bool:
    """Whether one statement speaks about ``action`` on ``target``."""
    if statement.actions is not None:
        acts = _action_matches(statement.actions, action)
    elif statement.notActions is not None:
        acts = not _action_matches(statement.notActions, action)
    else:
        acts = False
    if not acts:
        return False
    if statement.resources is not None:
        return _resource_matches(statement.resources, target, grant, statement.effect)
    if statement.notResources is not None:
        # "Everything but these": an unreadable specifier is read the refusing way round.
        opposite = "allow" if statement.effect == "deny" else "deny"
        return not _resource_matches(statement.notResources, target, grant, opposite)
    return False


def role_allows(grant: RoleGrant, action: str, target: Target) -> bool:
    """One role: a matching deny wins, then a matching allow; nothing matching is no access."""
    applying = [s for s in grant.statements if statement_applies(s, action, target, grant)]
    if any(s.effect == "deny" for s in applying):
        return False
    return any(s.effect == "allow" for s in applying)


@dataclass(frozen=True)
class Decision:
    """Whether the person may, and which role allowed it (None when none did)."""

    allowed: bool
    by: str | None = None


def decide(grants: Sequence[RoleGrant], action: str, target: Target) -> Decision:
    """Several roles add up: allowed when any one role allows (LaunchDarkly: the more permissive
    role wins across roles)."""
    for grant in grants:
        if role_allows(grant, action, target):
            return Decision(True, grant.name)
    return Decision(False)
