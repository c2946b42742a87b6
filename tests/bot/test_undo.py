"""Undo end to end: the Undo button of an applied card and ``/flag undo`` propose the inverse change
through the normal confirm loop; applied, it restores the flag document.

"Restores exactly" compares the whole flag document field by field, except what LaunchDarkly
generates on every write: ``_version``, each environment's ``version`` and ``lastModified``, and
the ``_id`` of rules and clauses (``replaceRules`` gives restored rules new ids, as LaunchDarkly
does). Variation ids, targets, clauses, weights, tags and everything else must be equal.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from commands.instructions import AddTargets, SemanticPatch, UpdateFallthroughVariationOrRollout
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, buttons, card_text, click, run

StartBot = Callable[..., Awaitable[Harness]]
GENERATED = frozenset({"_version", "version", "lastModified"})


def flag(bot: Harness, key: str) -> dict[str, Any]:
    """The flag as the sandbox holds it now (a copy)."""
    return copy.deepcopy(bot.sandbox.projects["demo"].flags[key])


def comparable(value: Any, *, in_rules: bool = False) -> Any:
    """``value`` without generated fields (see the module docstring)."""
    if isinstance(value, dict):
        return {
            k: _set_of_targets(v)
            if k in ("targets", "contextTargets")
            else comparable(v, in_rules=in_rules or k in ("rules", "clauses"))
            for k, v in value.items()
            if k not in GENERATED and not (in_rules and k == "_id")
        }
    if isinstance(value, list):
        return [comparable(v, in_rules=in_rules) for v in value]
    return value


def _set_of_targets(entries: Any) -> Any:
    """Target lists as sets: LaunchDarkly gives the order of targeted keys no meaning, and a key
    added back by ``addTargets`` comes last."""
    if not isinstance(entries, list):
        return entries
    return sorted(
        (
            {**comparable(e), "values": sorted(e.get("values") or [])}
            for e in entries
            if isinstance(e, dict) and e.get("values")
        ),
        key=lambda e: (str(e.get("contextKind")), int(e.get("variation", -1))),
    )


def assert_restored(now: dict[str, Any], was: dict[str, Any]) -> None:
    """Field by field, so a failure names the field that differs."""
    left, right = comparable(now), comparable(was)
    assert set(left) == set(right)
    for key in right:
        if key == "environments":
            for env in right[key]:
                for field in set(left[key][env]) | set(right[key][env]):
                    assert left[key][env].get(field) == right[key][env].get(field), (env, field)
        else:
            assert left[key] == right[key], key


async def apply(bot: Harness, command: str, *, user: str = ALICE) -> None:
    await run(bot, command, user=user)
    assert "Apply" in buttons(bot), card_text(bot)
    await click(bot, "Apply", user=user)
    assert "Applied by" in card_text(bot), card_text(bot)


@pytest.mark.parametrize(
    ("command", "key", "kinds"),
    [
        ("/flag off new-checkout test", "new-checkout", ["turnFlagOn"]),
        (
            "/flag rollout banner-color test 10% blue 90% green",
            "banner-color",
            ["updateFallthroughVariationOrRollout"],
        ),
        # The minimal inverse of what the change did, never a replace of the whole list.
        ("/flag add rule pricing-page test if country in US,CA serve v2", "pricing-page", ["removeRule"]),
        ("/flag remove rule pricing-page test 2", "pricing-page", ["addRule"]),
        ("/flag target new-checkout test user:carol,dave -> true", "new-checkout", ["removeTargets"]),
        ("/flag add tags new-checkout hotfix,incident", "new-checkout", ["removeTags"]),
        ("/flag remove tags new-checkout web", "new-checkout", ["addTags"]),
        ("/flag archive holiday-banner", "holiday-banner", ["restoreFlag"]),
    ],
    ids=["on-off", "rollout", "add-rule", "remove-rule", "targets", "add-tags", "remove-tags", "archive"],
)
async def test_the_undo_button_restores_the_flag_document(
    start_bot: StartBot, command: str, key: str, kinds: list[str]
) -> None:
    bot = await start_bot()
    original = flag(bot, key)
    if command.startswith("/flag archive"):
        # Archiving needs a second person only under a policy; without one the requester applies.
        await run(bot, command)
        await click(bot, "Apply")
    else:
        await apply(bot, command)
    assert comparable(flag(bot, key)) != comparable(original), "the change did something"
    assert buttons(bot) == ["Undo"]

    await click(bot, "Undo", user=BOB)
    assert buttons(bot) == ["Apply", "Cancel"], card_text(bot)
    assert "Undoes change" in card_text(bot) and "<@U_BOB> wants to change" in card_text(bot)
    patches_before_undo = len(bot.ld_patches())
    await click(bot, "Apply", user=BOB)

    (undo_patch,) = bot.ld_patches()[patches_before_undo:]
    assert [i["kind"] for i in undo_patch["body"]["instructions"]] == kinds
    assert "undo of flagops change" in undo_patch["body"]["comment"]
    assert_restored(flag(bot, key), original)


async def test_flag_undo_takes_my_last_applied_change_in_this_channel_or_the_one_named(bot: Harness) -> None:
    original = flag(bot, "new-checkout")
    await apply(bot, "/flag add tags new-checkout hotfix")
    first_id = bot.card().buttons[0]["value"]
    await apply(bot, "/flag off new-checkout test")

    await run(bot, "/flag undo")  # the last one: off
    assert "Turn targeting ON in test" in card_text(bot) or "ON" in card_text(bot)
    await click(bot, "Apply")
    assert flag(bot, "new-checkout")["environments"]["test"]["on"] is True

    await run(bot, f"/flag undo {first_id[:8]}")  # the one named: the tag
    await click(bot, "Apply")
    assert_restored(flag(bot, "new-checkout"), original)


async def test_undo_explains_what_it_cannot_do(bot: Harness) -> None:
    await run(bot, "/flag undo")
    assert any("no applied change in this channel" in t for t in bot.ephemeral_texts(ALICE))
    await run(bot, "/flag undo 0000dead")
    assert any("There is no change `0000dead`" in t for t in bot.ephemeral_texts(ALICE))

    await run(bot, "/flag delete holiday-banner confirm holiday-banner")
    change_id = bot.card().buttons[0]["value"]
    await click(bot, "Apply")
    assert "Applied by" in card_text(bot) and buttons(bot) == [], "a deleted flag has no Undo button"
    await run(bot, f"/flag undo {change_id[:8]}")
    assert any("deleted flag cannot be undone" in t for t in bot.ephemeral_texts(ALICE))

    await run(bot, "/flag off new-checkout test")  # proposed, never applied
    change_id = bot.card().buttons[0]["value"]
    await run(bot, f"/flag undo {change_id[:8]}")
    assert any("was not applied" in t for t in bot.ephemeral_texts(ALICE))
    assert len(bot.ld_patches()) == 1, "only the delete was sent"


async def test_undo_after_someone_else_changed_the_flag_says_what_it_keeps_and_overwrites(
    bot: Harness,
) -> None:
    original = flag(bot, "banner-color")
    await apply(bot, "/flag rollout banner-color test 10% blue 90% green")
    applied_card = bot.card()
    ld = bot.stack.runtime.ld
    variations = original["variations"]
    # Someone else, in LaunchDarkly: a target (which undo leaves alone), then the default rule again
    # (which undo overwrites).
    await ld.patch_flag_semantic(
        "demo",
        "banner-color",
        SemanticPatch(
            environmentKey="test",
            instructions=[AddTargets(variationId=variations[2]["_id"], values=["erin"])],
        ),
    )
    await click(bot, "Undo")
    text = card_text(bot)
    assert "The flag changed since" in text and "erin" in text
    assert "Undo leaves those later changes alone" in text
    await click(bot, "Apply")
    restored = flag(bot, "banner-color")
    assert restored["environments"]["test"]["fallthrough"] == original["environments"]["test"]["fallthrough"]
    assert "erin" in str(restored["environments"]["test"]["contextTargets"]) + str(
        restored["environments"]["test"]["targets"]
    ), "the later target stays"

    await bot.click("Undo", message=bot.slack.message(RELEASES, applied_card.ts))
    await bot.idle()
    assert any("Nothing to undo" in t for t in bot.ephemeral_texts(ALICE)), "already back as it was"

    await apply(bot, "/flag rollout banner-color test 30% blue 70% green")
    await ld.patch_flag_semantic(
        "demo",
        "banner-color",
        SemanticPatch(
            environmentKey="test",
            instructions=[UpdateFallthroughVariationOrRollout(variationId=variations[2]["_id"])],
        ),
    )
    await click(bot, "Undo")
    text = card_text(bot)
    assert "The flag changed since" in text and "Undo would overwrite" in text
    assert "Default rule" in text


async def test_an_undo_card_overtaken_by_a_flag_change_is_made_again(bot: Harness) -> None:
    original = flag(bot, "new-checkout")
    await apply(bot, "/flag off new-checkout test")
    await click(bot, "Undo")
    undo_card = bot.card()
    assert buttons(bot) == ["Apply", "Cancel"]
    # Someone changes the flag before the undo is applied.
    await bot.stack.runtime.ld.patch_flag_semantic(
        "demo",
        "new-checkout",
        SemanticPatch.model_validate({"instructions": [{"kind": "addTags", "values": ["x"]}]}),
    )
    await bot.click("Apply", message=undo_card)
    await bot.idle()
    overtaken = bot.slack.message(RELEASES, undo_card.ts)
    assert overtaken is not None and "a new preview follows" in str(overtaken.blocks)
    fresh = bot.card()
    assert fresh.ts != undo_card.ts and [b["text"]["text"] for b in fresh.buttons] == ["Apply", "Cancel"]
    await bot.click("Apply", message=fresh)
    await bot.idle()
    assert flag(bot, "new-checkout")["environments"]["test"]["on"] == original["environments"]["test"]["on"]


async def test_undo_leaves_what_others_added_since(bot: Harness) -> None:
    # The undo of "target alice" removes alice only: a replace of the whole list would silently
    # take away the target bob added in LaunchDarkly since, and the rule he added.
    await apply(bot, "/flag target new-checkout test user:alice-undo -> true")
    applied_card = bot.card()
    ld = bot.stack.runtime.ld
    true_id = flag(bot, "new-checkout")["variations"][0]["_id"]
    await ld.patch_flag_semantic(
        "demo",
        "new-checkout",
        SemanticPatch(
            environmentKey="test",
            instructions=[AddTargets(variationId=true_id, values=["bob-since"], contextKind="user")],
        ),
        token="sandbox-bob",
    )
    await click_on(bot, applied_card, "Undo")
    await click(bot, "Apply")
    env = flag(bot, "new-checkout")["environments"]["test"]
    values = {v for t in env["targets"] for v in t["values"]}
    assert "alice-undo" not in values and "bob-since" in values
    (undo_patch,) = bot.ld_patches()[-1:]
    assert [i["kind"] for i in undo_patch["body"]["instructions"]] == ["removeTargets"]


async def test_undo_of_an_added_rule_removes_that_rule_only(bot: Harness) -> None:
    await apply(bot, "/flag add rule pricing-page test if country in US,CA serve v2")
    applied_card = bot.card()
    rules_after_ours = len(flag(bot, "pricing-page")["environments"]["test"]["rules"])
    await apply(bot, "/flag add rule pricing-page test if country in FR serve v2", user=BOB)
    await click_on(bot, applied_card, "Undo")
    await click(bot, "Apply")
    rules = flag(bot, "pricing-page")["environments"]["test"]["rules"]
    assert len(rules) == rules_after_ours
    clauses = [c["values"] for r in rules for c in r["clauses"]]
    assert ["FR"] in clauses and ["US", "CA"] not in clauses


async def click_on(bot: Harness, message: Any, which: str, *, user: str = ALICE) -> None:
    assert (await bot.click(which, user=user, message=message)).status_code == 200
    await bot.idle()
