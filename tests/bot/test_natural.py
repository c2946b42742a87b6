"""Said the way people say it: natural phrasings, forgiving keys, state at a glance, no-ops refused
(signed HTTP, the fake Slack, the sandbox)."""

from __future__ import annotations

from typing import Any

from tests.bot.harness import ALICE, RELEASES, Harness, buttons, card_text, click, run


def on(bot: Harness, flag: str, env: str) -> bool:
    environments: dict[str, Any] = bot.sandbox.projects["demo"].flags[flag]["environments"]
    return bool(environments[env]["on"])


async def test_natural_phrasings_make_the_same_card_and_say_how_they_were_read(bot: Harness) -> None:
    await run(bot, "/flag turn off new-checkout in test")
    assert buttons(bot) == ["Apply", "Cancel"]
    assert "read as `/flag off new-checkout test`" in card_text(bot)
    await click(bot, "Apply")
    assert on(bot, "new-checkout", "test") is False
    await run(bot, "/flag enable new-checkout for test")
    await click(bot, "Apply")
    assert on(bot, "new-checkout", "test") is True
    await run(bot, "/flag kill new-checkout test")
    await click(bot, "Apply")
    assert on(bot, "new-checkout", "test") is False


async def test_the_canonical_command_says_no_read_as(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    assert "read as" not in card_text(bot)


async def test_keys_in_any_case_and_short_environment_names(bot: Harness) -> None:
    await run(bot, "/flag off New-Checkout Test")
    assert "*new-checkout*" in card_text(bot) and "read as `/flag off new-checkout test`" in card_text(bot)
    await click(bot, "Apply")
    (patch,) = bot.ld_patches()
    assert patch["path"].endswith("/flags/demo/new-checkout"), "the real key is what is sent"
    await run(bot, "/flag on new-checkout prod")
    assert "in *production*" in card_text(bot) and "Request approval" in buttons(bot)


async def test_an_unknown_environment_still_names_the_real_ones(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout prodution")
    assert not bot.slack.messages(RELEASES)
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "no environment `prodution`" in answer and "production" in answer


async def test_a_change_that_changes_nothing_is_refused_with_the_state(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout test")  # it is on already
    await run(bot, "/flag off new-checkout production")  # off already, and approval is required
    assert not bot.slack.messages(RELEASES), "no card"
    told = bot.ephemeral_texts(ALICE)
    assert any("new-checkout is already on in test" in t for t in told), told
    assert any("new-checkout is already off in production" in t for t in told), told
    assert not bot.ld_patches() and not bot.sandbox.approvals, "nothing sent, no approval request"


async def test_show_without_an_environment_gives_every_environment_at_a_glance(bot: Harness) -> None:
    await run(bot, "/flag what is new-checkout")
    (answer,) = bot.slack.ephemerals(ALICE)
    text = answer.text + str(answer.blocks)
    assert "test" in text and "production" in text
    assert "ON · serves" in text and "OFF · serves" in text


async def test_list_shows_on_or_off_in_each_environment(bot: Harness) -> None:
    await run(bot, "/flag list checkout")
    (answer,) = bot.slack.ephemerals(ALICE)
    line = next(
        line for line in (answer.text + "\n" + str(answer.blocks)).split("•") if "new-checkout" in line
    )
    assert "test ON" in line and "production OFF" in line


def fallthrough(bot: Harness, flag: str, env: str) -> dict[str, Any]:
    rollout: dict[str, Any] = bot.sandbox.projects["demo"].flags[flag]["environments"][env]["fallthrough"]
    return rollout


async def test_a_one_line_rollout_on_a_boolean_flag(bot: Harness) -> None:
    await run(bot, "/flag rollout new-checkout test 25%")
    assert "read as `/flag rollout new-checkout test 25% true 75% false`" in card_text(bot)
    await click(bot, "Apply")
    weights = {
        v["variation"]: v["weight"] for v in fallthrough(bot, "new-checkout", "test")["rollout"]["variations"]
    }
    assert weights == {0: 25000, 1: 75000}, "25% true, the rest false"
    await run(bot, "/flag roll out new-checkout to 50% in test")
    assert "read as `/flag rollout new-checkout test 50% true 50% false`" in card_text(bot)


async def test_a_one_line_rollout_keeps_the_rest_with_what_is_served_now(bot: Harness) -> None:
    await run(bot, "/flag rollout pricing-page test 10% v2")  # test serves v1 (#2) now
    assert "read as `/flag rollout pricing-page test 10% #1 90% #2`" in card_text(bot)
    await click(bot, "Apply")
    weights = {
        v["variation"]: v["weight"] for v in fallthrough(bot, "pricing-page", "test")["rollout"]["variations"]
    }
    assert weights == {0: 10000, 1: 90000}


async def test_a_one_line_rollout_that_cannot_be_completed_says_what_to_type(bot: Harness) -> None:
    await run(bot, "/flag rollout banner-color test 25% red")  # test serves a rollout now
    assert not bot.slack.messages(RELEASES)
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "where the other 75% go" in answer and "say the whole rollout" in answer


async def test_show_says_what_waits_in_each_environment(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    await run(bot, "/flag off new-checkout test in 2 hours")
    await click(bot, "Apply")
    await run(bot, "/flag show new-checkout")
    answer = bot.slack.ephemerals(ALICE)[-1]
    text = "\n".join([answer.text, *(str(b) for b in answer.blocks)]).replace("\\n", "\n")
    production = next(line for line in text.split("\n") if "production" in line and "OFF" in line)
    test = next(line for line in text.split("\n") if "test" in line and "ON" in line)
    assert "1 approval request pending" in production, production
    assert "1 scheduled change" in test, test


async def test_a_segment_that_does_not_exist_is_refused_with_the_close_ones(bot: Harness) -> None:
    await run(bot, "/flag add rule new-checkout test if in segment beta-tester serve true")
    assert not bot.slack.messages(RELEASES)
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "no segment `beta-tester` in `test`" in answer and "`beta-testers`" in answer
    await run(bot, "/flag add rule new-checkout test if in segment beta-testers serve true")
    assert buttons(bot) == ["Apply", "Cancel"]


async def test_hostile_phrasings_get_plain_answers_and_change_nothing(bot: Harness) -> None:
    lines = [
        "/flag turn off <!channel> in test",
        "/flag new-checkout off ../x",
        "/flag new-checkout off te?st",
        "/flag kill new-checkout#x test",
        "/flag what is a/../b",
        "/flag rollout new-checkout test 25% <!here>",
        "/flag rollout new-checkout ../prod 25%",
        "/flag roll out new-checkout to 25% in prod\x00uction",
        "/flag turn off " + "n" * 5000 + " in test",
    ]
    for line in lines:
        await run(bot, line)
    assert not bot.slack.messages(RELEASES), "no card"
    assert len(bot.ephemeral_texts(ALICE)) == len(lines), "each gets an answer"
    assert not bot.ld_patches(dry_runs=True), "nothing sent"
    for request in bot.ld_requests():
        assert ".." not in request["path"] and "#" not in request["path"], request["path"]
