"""Resolution: references become IDs, or a ResolveError names the candidates."""

from __future__ import annotations

import re

import pytest

from commands import ChangeCommand, ResolveError, parse, referenced_flags, resolve
from commands.demo import demo_flags

FLAGS = demo_flags()


def resolved(text: str, **kwargs: object) -> list[dict[str, object]]:
    cmd = parse(text)
    assert isinstance(cmd, ChangeCommand)
    body = resolve(cmd, FLAGS[cmd.flag], flags=FLAGS, **kwargs).body()  # type: ignore[arg-type]
    return list(body["instructions"])


def failure(text: str) -> ResolveError:
    cmd = parse(text)
    assert isinstance(cmd, ChangeCommand)
    with pytest.raises(ResolveError) as info:
        resolve(cmd, FLAGS[cmd.flag], flags=FLAGS)
    return info.value


def test_the_documented_message_for_a_mistyped_variation() -> None:
    err = failure("serve new-checkout test ture")
    assert err.message == 'no variation "ture" on new-checkout, did you mean "true"? (true, false)'
    assert err.candidates == ["true", "false"]


def test_values_respect_the_flags_types() -> None:
    err = failure('serve new-checkout test "true"')
    assert err.message.startswith('no variation "true" on new-checkout')
    assert "in quotes is a string" in err.message
    # On a string flag the same word is the string.
    flag = FLAGS["banner-color"] | {
        "key": "banner-color",
        "variations": [{"_id": "s-true", "value": "true"}, {"_id": "s-false", "value": "false"}],
    }
    cmd = parse("serve banner-color test true")
    assert isinstance(cmd, ChangeCommand)
    assert resolve(cmd, flag).body()["instructions"] == [
        {"kind": "updateFallthroughVariationOrRollout", "variationId": "s-true"}
    ]


def test_variations_by_name_case_insensitively_and_by_position() -> None:
    assert resolved("serve new-checkout test enabled") == resolved("serve new-checkout test #1")
    assert "it has 2" in failure("serve new-checkout test #3").message


def test_environments_are_exact() -> None:
    err = failure("on new-checkout prod")
    assert (
        err.message == 'no environment "prod" on new-checkout, did you mean "production"? (production, test)'
    )


def test_rules_by_description_and_their_candidates() -> None:
    assert resolved('remove rule pricing-page test "internal staff"') == resolved(
        "remove rule pricing-page test 3"
    )
    err = failure('remove rule pricing-page test "Beta tester"')
    assert 'did you mean "Beta testers"?' in err.message
    assert '1 "Beta testers"' in err.candidates
    assert "it has 3 rule(s)" in failure("remove rule pricing-page test 4").message
    assert "it has 0 rule(s)" in failure("remove rule new-checkout test 1").message


def test_clauses_by_attribute_or_position() -> None:
    err = failure("remove clause pricing-page test rule 2 clause contry")
    assert 'did you mean "country"?' in err.message
    assert "no clause 3" in failure("remove clause pricing-page test rule 2 clause 3").message


def test_untarget_finds_each_keys_variation() -> None:
    assert resolved("untarget new-checkout production qa-bot") == [
        {
            "kind": "removeTargets",
            "contextKind": "user",
            "variationId": FLAGS["new-checkout"]["variations"][0]["_id"],
            "values": ["qa-bot"],
        }
    ]
    assert "user nobody is not targeted" in failure("untarget new-checkout production nobody").message


def test_rollouts_cannot_name_a_variation_twice() -> None:
    assert "same variation" in failure("rollout new-checkout test 50% true 50% Enabled").message


def test_reorder_must_name_every_rule() -> None:
    assert "missing: rule 3" in failure("reorder rules pricing-page test 2,1").message


def test_prerequisites() -> None:
    assert referenced_flags(
        _cmd("replace prereqs express-shipping test new-checkout true, holiday-banner false")
    ) == {"new-checkout", "holiday-banner"}
    assert "already a prerequisite" in failure("add prereq express-shipping test new-checkout true").message
    assert "not a prerequisite" in failure("remove prereq banner-color test new-checkout").message
    assert "own prerequisite" in failure("add prereq new-checkout test new-checkout true").message
    cmd = _cmd("add prereq banner-color test new-checkout true")
    with pytest.raises(ResolveError, match="flag new-checkout is needed"):
        resolve(cmd, FLAGS["banner-color"])


def test_maintainer_emails_map_to_member_ids_when_members_are_given() -> None:
    assert resolved("maintainer new-checkout bob@example.com") == [
        {"kind": "updateMaintainerMember", "value": "bob@example.com"}
    ]
    assert resolved("maintainer new-checkout Bob@Example.com", members={"bob@example.com": "m-bob"}) == [
        {"kind": "updateMaintainerMember", "value": "m-bob"}
    ]
    cmd = _cmd("maintainer new-checkout bbo@example.com")
    expected = re.escape('no member "bbo@example.com", did you mean "bob@example.com"')
    with pytest.raises(ResolveError, match=expected):
        resolve(cmd, FLAGS["new-checkout"], members={"bob@example.com": "m-bob"})


def test_new_variation_values_are_typed_like_the_flag() -> None:
    assert resolved("add variation banner-color 20")[0]["value"] == "20"
    assert "is not true or false" in failure("add variation new-checkout maybe").message
    assert resolved('add variation new-checkout {"x": 1}')[0]["value"] == {"x": 1}


def test_several_changes_become_one_patch_with_comment() -> None:
    cmd = _cmd('on new-checkout test; target alice -> false; off-variation false -m "QA"')
    body = resolve(cmd, FLAGS["new-checkout"]).body()
    assert body["comment"] == "QA" and body["environmentKey"] == "test"
    assert [i["kind"] for i in body["instructions"]] == ["turnFlagOn", "addTargets", "updateOffVariation"]


def test_the_flag_document_must_be_the_commands_flag() -> None:
    with pytest.raises(ResolveError, match="is for new-checkout"):
        resolve(_cmd("on new-checkout test"), FLAGS["banner-color"])


def _cmd(text: str) -> ChangeCommand:
    cmd = parse(text)
    assert isinstance(cmd, ChangeCommand)
    return cmd
