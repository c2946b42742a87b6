"""JSON patches, merge patches and project patches through the change loop, end to end: signed
Slack requests in, the fake Slack and the sandbox over HTTP.

``json-patch`` and ``merge-patch`` (seeds 002/003) and ``project-patch`` (seed 004) get what every
change gets: a card with before → after (from LaunchDarkly's dry run where it gives one), Apply
once, the thread, Undo, the policy, and the truth about unknown outcomes. Bad input is refused
before anything is sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from commands.instructions import SemanticPatch, TurnFlagOff
from tests.bot.harness import ALICE, BOB, CAROL, RELEASES, Harness, buttons, card_text, click, details, run
from tests.bot.test_approvals import link, start
from tests.bot.test_policy import PROJECT_POLICY, write
from tests.seeds import json_patch_examples

StartBot = Callable[..., Awaitable[Harness]]


def flag(bot: Harness, key: str = "new-checkout") -> dict[str, Any]:
    return copy.deepcopy(bot.sandbox.projects["demo"].flags[key])


def env(bot: Harness, environment: str, key: str = "new-checkout") -> dict[str, Any]:
    return dict(flag(bot, key)["environments"][environment])


def project(bot: Harness) -> dict[str, Any]:
    return copy.deepcopy(bot.sandbox.projects["demo"].doc)


def ops(*operations: dict[str, Any]) -> str:
    return json.dumps(list(operations))


def writes(bot: Harness) -> list[dict[str, Any]]:
    """Every request that could change something (PATCH, POST, DELETE), dry runs included."""
    return [r for r in bot.ld_requests() if r["method"] in ("PATCH", "POST", "DELETE")]


def thread_texts(bot: Harness) -> list[str]:
    return [m.text + " " + " ".join(str(b) for b in m.blocks) for m in bot.thread()]


def fault(bot: Harness, **update: Any) -> None:
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update=update)


# --- JSON patch and merge patch on a flag -------------------------------------------------------


async def test_a_json_patch_is_previewed_by_dry_run_applied_once_and_reported(bot: Harness) -> None:
    patch = [
        {"op": "test", "path": "/environments/test/on", "value": True},
        {"op": "replace", "path": "/environments/test/on", "value": False},
        {"op": "add", "path": "/environments/test/targets/0/values/-", "value": "carol"},
    ]
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)} -m 'kill switch'")
    text = card_text(bot)
    assert "Targeting in test" in text and "ON → *OFF*" in text and buttons(bot) == ["Apply", "Cancel"]
    assert "Check that /environments/test/on is true" in text, "each operation in words"
    (dry,) = bot.ld_patches(dry_runs=True)
    assert dry["query"]["dryRun"] == "true" and dry["contentType"] == "application/json"
    assert dry["body"] == {"patch": patch}
    assert env(bot, "test")["on"] is True, "the preview changed nothing"

    change = bot.card().buttons[0]["value"]
    # Two clicks at once (a double click, a replay): one PATCH.
    request = bot.click_request("Apply")
    await bot.send(request)
    await bot.send(request)
    await bot.idle()
    (sent,) = bot.ld_patches()
    assert sent["contentType"] == "application/json" and "dryRun" not in sent["query"]
    assert sent["body"]["patch"] == patch
    assert sent["body"]["comment"].startswith(f"flagops change {change} via Slack by @alice")
    assert sent["body"]["comment"].endswith("kill switch")
    assert env(bot, "test")["on"] is False and "carol" in env(bot, "test")["targets"][0]["values"]
    # LaunchDarkly's audit log holds the comment, so the change id decides any unknown outcome.
    (entry,) = bot.sandbox.ld_audit
    assert "flagops change" in entry["comment"]
    assert "Applied by" in card_text(bot) and buttons(bot) == ["Undo"]
    (reply,) = thread_texts(bot)
    assert "version 1 → 2" in reply and "Targeting in test" in reply


async def test_a_merge_patch_carries_its_comment_as_launchdarkly_documents(bot: Harness) -> None:
    await run(bot, '/flag merge-patch banner-color {"description": "Blue is back", "temporary": true}')
    assert "Description" in card_text(bot) and "Blue is back" in card_text(bot)
    await click(bot, "Apply")
    (sent,) = bot.ld_patches()
    assert set(sent["body"]) == {"merge", "comment"}, "LaunchDarkly's update with comment"
    assert sent["body"]["merge"] == {"description": "Blue is back", "temporary": True}
    assert "flagops change" in sent["body"]["comment"]
    assert flag(bot, "banner-color")["description"] == "Blue is back"
    assert flag(bot, "banner-color")["temporary"] is True
    assert "flagops change" in bot.sandbox.ld_audit[-1]["comment"]
    assert "Applied" in card_text(bot)


async def test_a_merge_patch_typed_with_its_comment_keeps_it(bot: Harness) -> None:
    await run(bot, '/flag merge-patch banner-color {"merge": {"description": "x"}, "comment": "typed"}')
    await click(bot, "Apply")
    (sent,) = bot.ld_patches()
    assert sent["body"]["merge"] == {"description": "x"} and sent["body"]["comment"].endswith("typed")


@pytest.mark.parametrize(
    ("patch", "said"),
    [
        ([{"op": "remove", "path": "/environments/test/rules/3"}], "has no item `3`"),
        ([{"op": "replace", "path": "/environments/test/onn", "value": False}], "there is no `onn`"),
        ([{"op": "add", "path": "/colour", "value": "red"}], "is not a field of a LaunchDarkly flag"),
        ([{"op": "add", "path": "/environments/staging/on", "value": True}], "there is no `staging`"),
        (
            [
                {"op": "test", "path": "/environments/test/on", "value": False},
                {"op": "replace", "path": "/environments/test/on", "value": False},
            ],
            "failed: the flag has true there, not false",
        ),
        ([{"op": "test", "path": "/_version", "value": 7}], "failed: the flag has 1 there, not 7"),
        ([{"op": "replace", "path": "/key", "value": "renamed"}], "is set by LaunchDarkly"),
        ([{"op": "replace", "path": "/environments/test/on", "value": "yes"}], "must be true or false"),
        ([{"op": "replace", "path": "/environments/test/offVariation", "value": 9}], "variation index"),
        (
            [{"op": "replace", "path": "/description", "value": "The redesigned checkout flow"}],
            "changes nothing",
        ),
    ],
    ids=[
        "does-not-apply",
        "unknown-path",
        "unknown-field",
        "unknown-environment",
        "test-fails",
        "test-version",
        "read-only",
        "wrong-type",
        "bad-variation",
        "no-change",
    ],
)
async def test_a_bad_json_patch_is_refused_before_any_request(
    bot: Harness, patch: list[dict[str, Any]], said: str
) -> None:
    before = flag(bot)
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)}")
    assert not bot.slack.messages(RELEASES), "no card"
    (answer,) = bot.ephemeral_texts(ALICE)
    assert said in answer and "Nothing was sent" in answer, answer
    assert writes(bot) == [], "not even a dry run"
    assert flag(bot) == before


async def test_a_bad_merge_patch_is_refused_before_any_request(bot: Harness) -> None:
    await run(bot, '/flag merge-patch new-checkout {"environments": {"test": {"on": "off"}}}')
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "`/environments/test/on` must be true or false" in answer
    await run(bot, '/flag merge-patch new-checkout {"environments": {"test": null}}')
    assert "cannot be removed" in bot.ephemeral_texts(ALICE)[-1]
    assert writes(bot) == [] and not bot.slack.messages(RELEASES)


async def test_what_a_patch_echoes_is_escaped(bot: Harness) -> None:
    await run(bot, '/flag merge-patch new-checkout {"description": "<!channel> <@U_BOB> & co"}')
    text = card_text(bot)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    await run(bot, '/flag json-patch new-checkout [{"op": "remove", "path": "/<!here>"}]')
    assert "<!here>" not in bot.ephemeral_texts(ALICE)[-1]


async def test_the_flag_moving_since_the_preview_supersedes_the_card(bot: Harness) -> None:
    await run(bot, '/flag json-patch new-checkout [{"op": "replace", "path": "/description", "value": "A"}]')
    card = bot.card()
    # Bob writes to the flag in LaunchDarkly meanwhile: its version moves.
    bobs = SemanticPatch(environmentKey="test", instructions=[TurnFlagOff()], comment="from the UI")
    await bot.stack.runtime.ld.patch_flag_semantic("demo", "new-checkout", bobs, token="sandbox-bob")
    await click(bot, "Apply", message=card)
    updated = bot.slack.message(RELEASES, card.ts)
    assert "changed since this preview" in str(updated.blocks)
    assert len(bot.ld_patches()) == 1, "only bob's write: nothing was sent for the card"
    (fresh,) = [m for m in bot.thread(card) if m.buttons]
    await click(bot, "Apply", message=fresh)
    assert flag(bot)["description"] == "A"


# --- environments that require approval ---------------------------------------------------------


async def test_a_patch_in_an_approval_environment_is_sent_for_approval_as_instructions(bot: Harness) -> None:
    patch = [
        {"op": "replace", "path": "/environments/production/on", "value": True},
        {"op": "add", "path": "/environments/production/targets/0/values/-", "value": "dana"},
    ]
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)}")
    text = card_text(bot)
    assert buttons(bot) == ["Request approval", "Cancel"], text
    assert "As instructions" in text and "requires approval" in text
    shown = await details(bot)
    assert "turnFlagOn" in shown and "addTargets" in shown, "Details shows the instructions sent for approval"
    await click(bot, "Request approval")
    (stored,) = bot.sandbox.approvals.values()
    assert stored.doc["instructions"] == [
        {"kind": "turnFlagOn"},
        {
            "kind": "addTargets",
            "contextKind": "user",
            "variationId": "903052d7-527c-52b5-b27a-8436463aa644",
            "values": ["dana"],
        },
    ]
    assert not bot.ld_patches(), "nothing was patched: it waits for approval"
    assert env(bot, "production")["on"] is False


async def test_a_merge_patch_in_an_approval_environment_with_rules_is_translated(bot: Harness) -> None:
    rules = env(bot, "production", "pricing-page")["rules"]
    reordered = [rules[-1], *rules[:-1]]
    body = json.dumps({"environments": {"production": {"rules": reordered}}})
    await run(bot, f"/flag merge-patch pricing-page {body}")
    assert buttons(bot) == ["Request approval", "Cancel"], card_text(bot)
    await click(bot, "Request approval")
    (stored,) = bot.sandbox.approvals.values()
    assert [i["kind"] for i in stored.doc["instructions"]] == ["replaceRules"]


@pytest.mark.parametrize(
    ("patch", "said"),
    [
        (
            [
                {"op": "replace", "path": "/environments/production/on", "value": True},
                {"op": "replace", "path": "/description", "value": "also this"},
            ],
            "send the flag-level fields separately",
        ),
        (
            [
                {"op": "replace", "path": "/environments/production/on", "value": True},
                {"op": "replace", "path": "/environments/test/on", "value": False},
            ],
            "it changes several environments",
        ),
        ([{"op": "remove", "path": "/environments/production/offVariation"}], "no instruction clears"),
    ],
    ids=["with-flag-fields", "two-environments", "no-instruction"],
)
async def test_a_patch_in_an_approval_environment_without_instructions_is_refused(
    bot: Harness, patch: list[dict[str, Any]], said: str
) -> None:
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)}")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "production requires approval" in answer and said in answer and "Nothing was sent" in answer, (
        answer
    )
    assert writes(bot) == [] and not bot.slack.messages(RELEASES)


async def test_a_405_at_apply_without_instructions_fails_with_the_reason(bot: Harness) -> None:
    patch = [
        {"op": "replace", "path": "/environments/test/on", "value": False},
        {"op": "replace", "path": "/description", "value": "both"},
    ]
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)}")
    assert buttons(bot) == ["Apply", "Cancel"]
    # An admin requires approvals in test after the preview: LaunchDarkly answers 405 at apply.
    bot.sandbox.projects["demo"].environments["test"]["approvalSettings"]["required"] = True
    await click(bot, "Apply")
    text = card_text(bot)
    assert "requires approval" in text and "semantic-patch instructions only" in text
    assert "Request approval" not in buttons(bot) and "Nothing changed" in text
    assert flag(bot)["description"] != "both"


async def test_a_405_at_apply_with_instructions_offers_request_approval(bot: Harness) -> None:
    await run(bot, '/flag merge-patch new-checkout {"environments": {"test": {"on": false}}}')
    bot.sandbox.projects["demo"].environments["test"]["approvalSettings"]["required"] = True
    await click(bot, "Apply")
    assert buttons(bot) == ["Request approval", "Cancel"]
    await click(bot, "Request approval")
    (stored,) = bot.sandbox.approvals.values()
    assert stored.doc["instructions"] == [{"kind": "turnFlagOff"}]


# --- policy and roles -------------------------------------------------------------------------------


async def test_the_policy_judges_a_patch_by_what_it_changes(start_bot: StartBot, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    write(policy, PROJECT_POLICY)
    bot = await start_bot(flagops_policy=str(policy))
    # Setting /archived is archiving: a second person must apply it.
    await run(bot, '/flag merge-patch holiday-banner {"archived": true}')
    assert "second person" in card_text(bot)
    assert "confirm" in bot.card().buttons[0], "Apply asks again, as for `archive`"
    await click(bot, "Apply")
    assert any("needs a second person" in t for t in bot.ephemeral_texts(ALICE))
    assert not bot.ld_patches()
    await click(bot, "Apply", user=BOB)
    assert flag(bot, "holiday-banner")["archived"] is True
    # Any environment the patch changes is checked: production is read-only.
    both = {"environments": {"test": {"on": False}, "production": {"on": True}}}
    await run(bot, f"/flag merge-patch new-checkout {json.dumps(both)}")
    assert "production* in project *demo* is read-only" in bot.ephemeral_texts(ALICE)[-1]
    # Carol is not in the project's propose rule.
    await run(bot, '/flag merge-patch new-checkout {"description": "x"}', user=CAROL)
    assert "may not propose" in bot.ephemeral_texts(CAROL)[-1]
    await run(bot, '/flag project-patch [{"op": "add", "path": "/tags/-", "value": "x"}]', user=CAROL)
    assert "settings of project *demo*" in bot.ephemeral_texts(CAROL)[-1]
    assert len(bot.ld_patches()) == 1


async def test_launchdarkly_refuses_a_reader_acting_through_a_linked_account(start_bot: StartBot) -> None:
    bot = await start(start_bot)
    await link(bot, CAROL, "sandbox-carol")
    await run(bot, '/flag merge-patch new-checkout {"description": "by a reader"}', user=CAROL)
    await click(bot, "Apply", user=CAROL)
    text = card_text(bot)
    assert "403" in text and "Nothing changed" in text
    assert flag(bot)["description"] != "by a reader"


# --- unknown outcomes -------------------------------------------------------------------------------


async def test_a_json_patch_whose_answer_is_lost_is_decided_by_the_audit_log(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, '/flag json-patch new-checkout [{"op": "replace", "path": "/description", "value": "L"}]')
    fault(bot, drop_every=1, methods=["PATCH"])  # handled, then the connection drops
    await click(bot, "Apply")
    fault(bot, drop_every=0)
    assert flag(bot)["description"] == "L"
    assert "Applied" in card_text(bot) and "audit log shows this change" in card_text(bot)
    assert len([r for r in bot.ld_patches() if r.get("status") == "dropped"]) == 1


async def test_a_merge_patch_that_never_landed_is_not_applied_then_sent_again(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, '/flag merge-patch new-checkout {"description": "N"}')
    fault(bot, error_every=1, error_status=500, methods=["PATCH"])
    await click(bot, "Apply")
    fault(bot, error_every=0)
    assert "Not applied" in card_text(bot) and buttons(bot) == ["Send again", "Cancel"]
    await click(bot, "Send again")
    assert flag(bot)["description"] == "N" and "Applied" in card_text(bot)


# --- undo -------------------------------------------------------------------------------------------


async def test_undo_of_a_json_patch_is_the_inverse_patch(bot: Harness) -> None:
    original = flag(bot)
    patch = [
        {"op": "replace", "path": "/environments/test/on", "value": False},
        {"op": "add", "path": "/tags/-", "value": "json"},
        {"op": "remove", "path": "/environments/test/targets/0/values/0"},
    ]
    await run(bot, f"/flag json-patch new-checkout {json.dumps(patch)}")
    await click(bot, "Apply")
    await click(bot, "Undo", user=BOB)
    assert buttons(bot) == ["Apply", "Cancel"] and "Undoes change" in card_text(bot)
    await click(bot, "Apply", user=BOB)
    undo_patch = bot.ld_patches()[-1]["body"]
    assert "patch" in undo_patch and "undo of flagops change" in undo_patch["comment"]
    now = flag(bot)
    for field in ("tags", "description"):
        assert now[field] == original[field]
    for field in ("on", "targets", "contextTargets", "rules", "fallthrough"):
        assert now["environments"]["test"][field] == original["environments"]["test"][field], field


async def test_undo_of_a_merge_patch_restores_what_it_set_and_nothing_else(bot: Harness) -> None:
    original = flag(bot, "banner-color")
    await run(
        bot, '/flag merge-patch banner-color {"description": "M", "environments": {"test": {"on": false}}}'
    )
    await click(bot, "Apply")
    await run(bot, "/flag add tags banner-color later")
    await click(bot, "Apply")
    await run(bot, f"/flag undo {proposal_id(bot)}")
    assert "The flag changed since" in card_text(bot)
    await click(bot, "Apply")
    now = flag(bot, "banner-color")
    assert now["description"] == original["description"]
    assert now["environments"]["test"]["on"] == original["environments"]["test"]["on"]
    assert "later" in now["tags"], "a later change to another part stays"


def proposal_id(bot: Harness) -> str:
    """The id of the first card posted in the channel (the card's footer shows it)."""
    first = bot.slack.messages(RELEASES)[0]
    footer = str(first.blocks[-1])
    return footer.split("change ")[-1][:8]


# --- the project ------------------------------------------------------------------------------------


async def test_a_project_patch_is_previewed_locally_sent_as_a_bare_array_and_undone(bot: Harness) -> None:
    original = project(bot)
    patch = [
        {"op": "add", "path": "/tags/0", "value": "zeta"},
        {"op": "add", "path": "/tags/-", "value": "alpha"},
        {"op": "add", "path": "/tags/-", "value": "zeta"},
    ]
    await run(bot, f"/flag project-patch {json.dumps(patch)}")
    text = card_text(bot)
    assert "wants to change project *demo*" in text and "Project tags" in text
    assert "alpha, demo, zeta" in text, "tags deduplicated and sorted, as seed 004 says"
    assert writes(bot) == [], "LaunchDarkly documents no dry run for projects: nothing is sent"
    request = bot.click_request("Apply")  # pressed twice: sent once
    await bot.send(request)
    await bot.send(request)
    await bot.idle()
    (sent,) = bot.ld_patches()
    assert sent["path"] == "/api/v2/projects/demo" and sent["body"] == patch, "a bare array, no comment"
    assert sent["contentType"] == "application/json" and "dryRun" not in sent["query"]
    assert project(bot)["tags"] == ["alpha", "demo", "zeta"]
    assert "Applied by" in card_text(bot) and buttons(bot) == ["Undo"]
    assert "Project tags" in thread_texts(bot)[0]

    await click(bot, "Undo")
    assert "Undoes change" in card_text(bot)
    await click(bot, "Apply")
    assert project(bot)["tags"] == original["tags"]


@pytest.mark.parametrize(
    ("patch", "said"),
    [
        ([{"op": "replace", "path": "/colour", "value": "red"}], "there is no `colour`"),
        ([{"op": "add", "path": "/colour", "value": "red"}], "is not a field a project patch changes"),
        ([{"op": "replace", "path": "/key", "value": "other"}], "is set by LaunchDarkly"),
        (
            [{"op": "test", "path": "/name", "value": "Prod"}],
            'failed: the project has "Demo" there, not "Prod"',
        ),
        ([{"op": "replace", "path": "/tags", "value": [1]}], "must be a list of tags"),
        ([{"op": "add", "path": "/tags/-", "value": "demo"}], "changes nothing"),
    ],
    ids=["does-not-apply", "unknown-field", "read-only", "test-fails", "wrong-type", "no-change"],
)
async def test_a_bad_project_patch_is_refused_before_any_request(
    bot: Harness, patch: list[dict[str, Any]], said: str
) -> None:
    await run(bot, f"/flag project-patch {json.dumps(patch)}")
    (answer,) = bot.ephemeral_texts(ALICE)
    assert said in answer and "Nothing was sent" in answer, answer
    assert writes(bot) == [] and not bot.slack.messages(RELEASES)


async def test_a_project_patch_whose_answer_is_lost_is_decided_by_the_documents(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, '/flag project-patch [{"op": "replace", "path": "/name", "value": "Demo 2"}]')
    fault(bot, drop_every=1, methods=["PATCH"])
    await click(bot, "Apply")
    fault(bot, drop_every=0)
    assert project(bot)["name"] == "Demo 2"
    text = card_text(bot)
    assert "Applied" in text and "the project shows every value this change sets" in text
    assert "audit log shows" not in text, "no comment, so no audit entry is claimed"


async def test_a_project_patch_that_never_landed_is_not_applied_then_sent_again(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, '/flag project-patch [{"op": "replace", "path": "/name", "value": "Demo 3"}]')
    fault(bot, error_every=1, error_status=502, methods=["PATCH"])
    await click(bot, "Apply")
    fault(bot, error_every=0)
    text = card_text(bot)
    assert "Not applied" in text and "project does not show this change" in text
    assert buttons(bot) == ["Send again", "Cancel"]
    await click(bot, "Send again")
    assert project(bot)["name"] == "Demo 3" and "Applied" in card_text(bot)
    assert len([r for r in bot.ld_patches() if r["path"] == "/api/v2/projects/demo"]) == 2


async def test_a_project_that_moved_since_the_preview_supersedes_the_card(bot: Harness) -> None:
    await run(bot, '/flag project-patch [{"op": "replace", "path": "/name", "value": "Mine"}]')
    card = bot.card()
    bot.sandbox.projects["demo"].doc["tags"] = ["demo", "someone-else"]
    await click(bot, "Apply", message=card)
    assert "project changed since this preview" in str(bot.slack.message(RELEASES, card.ts).blocks)
    assert not bot.ld_patches()
    (fresh,) = [m for m in bot.thread(card) if m.buttons]
    await click(bot, "Apply", message=fresh)
    assert project(bot)["name"] == "Mine" and project(bot)["tags"] == ["demo", "someone-else"]


# --- the reference pages' own examples ----------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2], ids=["add-to-targets", "new-target-entry", "release-pipeline"])
async def test_the_flag_pages_json_patch_examples_go_through_the_loop(bot: Harness, index: int) -> None:
    # Seed 002's special cases of `path`, on the demo project's `test` for the page's `devint`.
    example = json.loads(json.dumps(json_patch_examples()[index]).replace("/devint/", "/test/"))
    await run(bot, f"/flag json-patch new-checkout {json.dumps(example)}")
    assert buttons(bot) == ["Apply", "Cancel"], bot.ephemeral_texts(ALICE)
    await click(bot, "Apply")
    assert "Applied by" in card_text(bot)
    now = flag(bot)
    if index == 2:
        assert now["releasePipelineKey"] == "example-release-pipeline-key"
    else:
        targeted = {v for t in now["environments"]["test"]["targets"] for v in t["values"]}
        assert "TestClient10" in targeted


async def test_the_project_pages_sample_adding_a_null_tag_is_refused(bot: Harness) -> None:
    # Seed 004's curl sample: a valid JSON patch body, but no project has a null tag.
    await run(bot, '/flag project-patch [{"op": "add", "path": "/tags/0", "value": null}]')
    assert "must be a list of tags" in bot.ephemeral_texts(ALICE)[-1]
    assert writes(bot) == []


async def test_a_link_patch_is_not_sent_from_slack(bot: Harness) -> None:
    await run(bot, '/flag link-patch new-checkout l1 [{"op": "replace", "path": "/title", "value": "T"}]')
    assert "`link edit" in bot.ephemeral_texts(ALICE)[-1]
    assert writes(bot) == [] and not bot.slack.messages(RELEASES)
