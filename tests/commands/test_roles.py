"""The role evaluator, as LaunchDarkly documents role policies: deny beats allow within a role,
no statement is no access, roles add up, wildcards, tag and property filters, role attributes."""

from __future__ import annotations

from commands.demo import demo_roles
from commands.roles import CustomRole, RoleGrant, Statement, Target, built_in, decide, role_allows

TEST = Target("demo", "test", "new-checkout", environment_properties={"critical": False})
PRODUCTION = Target("demo", "production", "new-checkout", environment_properties={"critical": True})
FLAG_LEVEL = Target("demo", None, "new-checkout")


def grant(*statements: dict[str, object], attributes: dict[str, list[str]] | None = None) -> RoleGrant:
    return RoleGrant("custom", tuple(Statement.model_validate(s) for s in statements), attributes or {})


def demo(key: str, attributes: dict[str, list[str]] | None = None) -> RoleGrant:
    role = CustomRole.model_validate(demo_roles()[key])
    return RoleGrant(key, tuple(role.policy), attributes or {})


def test_built_in_roles() -> None:
    for role in ("reader", "no_access"):
        assert not decide([built_in(role)], "updateOn", TEST).allowed
    for role in ("writer", "admin", "owner"):
        assert decide([built_in(role)], "updateOn", PRODUCTION).allowed
        assert decide([built_in(role)], "updateGlobalArchived", FLAG_LEVEL).allowed


def test_custom_role_limited_to_targets_in_test() -> None:
    targeter = demo("test-targeter")
    assert role_allows(targeter, "updateTargets", TEST)
    assert not role_allows(targeter, "updateOn", TEST)
    assert not role_allows(targeter, "updateTargets", PRODUCTION)
    assert not role_allows(targeter, "updateTags", FLAG_LEVEL)  # env/test does not grant flag-level


def test_a_reader_with_a_custom_role_gets_its_rights() -> None:
    decision = decide([built_in("reader"), demo("test-targeter")], "updateTargets", TEST)
    assert decision.allowed and decision.by == "test-targeter"


def test_deny_inside_a_role_beats_its_allow() -> None:
    role = grant(
        {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "actions": ["*"]},
        {"effect": "deny", "resources": ["proj/*:env/production:flag/*"], "actions": ["updateOn"]},
    )
    assert role_allows(role, "updateOn", TEST)
    assert not role_allows(role, "updateOn", PRODUCTION)
    assert role_allows(role, "updateRules", PRODUCTION)


def test_no_statement_means_no_access() -> None:
    assert not role_allows(grant(), "updateOn", TEST)
    assert not role_allows(
        grant({"effect": "allow", "resources": ["proj/other:env/*:flag/*"], "actions": ["*"]}),
        "updateOn",
        TEST,
    )


def test_two_roles_combine() -> None:
    on_only = grant({"effect": "allow", "resources": ["proj/demo:env/*:flag/*"], "actions": ["updateOn"]})
    denies_on = grant(
        {"effect": "allow", "resources": ["proj/demo:env/*:flag/*"], "actions": ["updateRules"]},
        {"effect": "deny", "resources": ["proj/demo:env/*:flag/*"], "actions": ["updateOn"]},
    )
    # A deny in one role does not take away what another role allows: permissions add up.
    assert decide([denies_on, on_only], "updateOn", TEST).allowed
    assert decide([denies_on, on_only], "updateRules", TEST).allowed
    assert not decide([denies_on, on_only], "updateTargets", TEST).allowed


def test_role_attribute_resolves_and_a_missing_one_never_allows() -> None:
    toggler = demo("project-toggler", {"toggleProjects": ["other", "demo"]})
    assert role_allows(toggler, "updateOn", TEST)
    assert not role_allows(toggler, "updateOn", PRODUCTION)  # the critical environment is denied
    assert not role_allows(demo("project-toggler", {"toggleProjects": ["other"]}), "updateOn", TEST)
    assert not role_allows(demo("project-toggler"), "updateOn", TEST)
    deny_by_attribute = grant(
        {"effect": "allow", "resources": ["*"], "actions": ["*"]},
        {"effect": "deny", "resources": ["proj/${roleAttribute/frozen}:env/*:flag/*"], "actions": ["*"]},
    )
    assert not role_allows(deny_by_attribute, "updateOn", TEST)  # missing in a deny: it applies


def test_wildcards_tags_and_properties() -> None:
    tagged = Target(
        "demo", "test", "f", environment_tags=frozenset({"qa_eu"}), flag_tags=frozenset({"a", "b"})
    )
    both = grant({"effect": "allow", "resources": ["proj/*:env/*:flag/*;a,b"], "actions": ["update*"]})
    assert role_allows(both, "updateOn", tagged)
    assert not role_allows(both, "deleteFlag", tagged)
    needs_c = grant({"effect": "allow", "resources": ["proj/*:env/*:flag/*;a,c"], "actions": ["*"]})
    assert not role_allows(needs_c, "updateOn", tagged)  # every tag named must be on the flag
    qa_env = grant({"effect": "allow", "resources": ["proj/*:env/*;qa_*:flag/*"], "actions": ["*"]})
    assert role_allows(qa_env, "updateOn", tagged) and not role_allows(qa_env, "updateOn", TEST)
    not_critical = grant(
        {"effect": "allow", "resources": ["proj/*:env/*;{critical:false}:flag/*"], "actions": ["*"]}
    )
    assert role_allows(not_critical, "updateOn", TEST) and not role_allows(
        not_critical, "updateOn", PRODUCTION
    )
    unknown_tags = Target("demo", "test", "f", flag_tags=None)
    assert not role_allows(both, "updateOn", unknown_tags)  # tags not known: a tag filter cannot allow


def test_not_actions_and_not_resources() -> None:
    all_but_delete = grant(
        {"effect": "allow", "resources": ["proj/*:env/*:flag/*"], "notActions": ["deleteFlag"]}
    )
    assert role_allows(all_but_delete, "updateOn", TEST)
    assert not role_allows(all_but_delete, "deleteFlag", FLAG_LEVEL)
    not_production = grant(
        {"effect": "allow", "resources": ["*"], "actions": ["*"]},
        {"effect": "deny", "notResources": ["proj/*:env/test:flag/*"], "actions": ["updateOn"]},
    )
    assert role_allows(not_production, "updateOn", TEST)
    assert not role_allows(not_production, "updateOn", PRODUCTION)


def test_project_resource() -> None:
    project = Target("demo")
    role = grant({"effect": "allow", "resources": ["proj/demo"], "actions": ["updateProjectName"]})
    assert role_allows(role, "updateProjectName", project)
    assert not role_allows(role, "updateProjectName", TEST)
    assert not role_allows(demo("test-targeter"), "updateTags", project)
