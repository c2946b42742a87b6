"""Said the way people say it, continued (issue 16): a guess comes with the corrected command in
one click, a mention is a person's email, a partly redundant change drops the redundant part,
and free text needs no quotes (signed HTTP, the fake Slack, the sandbox)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.inbox.store import InboxRow, InboxStore
from bot.offline.fake_slack import Ephemeral, Message
from bot.slack.router import corrected_text
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, buttons, card_text, click, run


def flag(bot: Harness, key: str) -> dict[str, Any]:
    document: dict[str, Any] = bot.sandbox.projects["demo"].flags[key]
    return document


def last_answer(bot: Harness, user: str = ALICE) -> Ephemeral:
    answers = bot.slack.ephemerals(user)
    assert answers, "no answer"
    return answers[-1]


def answer_buttons(answer: Ephemeral) -> list[dict[str, Any]]:
    return Message(answer.channel, "1.0", answer.text, answer.blocks, "UBOT").buttons


def answer_text(answer: Ephemeral) -> str:
    return answer.text + " " + json.dumps(answer.blocks, ensure_ascii=False)


async def click_answer(bot: Harness, answer: Ephemeral, *, user: str = ALICE) -> None:
    """Click the (only) button of an ephemeral answer, as Slack sends that click."""
    (button,) = answer_buttons(answer)
    message = Message(answer.channel, "1.0", answer.text, answer.blocks, "UBOT")
    await click(bot, button["text"]["text"], user=user, message=message)


def sent_instructions(bot: Harness) -> list[dict[str, Any]]:
    """The instructions of the one PATCH (not a dry run) LaunchDarkly received."""
    (patch,) = bot.ld_patches()
    instructions: list[dict[str, Any]] = patch["body"]["instructions"]
    return instructions


# --- a guess, one click away ---------------------------------------------------------------------


async def test_an_unknown_flag_offers_the_corrected_command_and_the_click_runs_it(bot: Harness) -> None:
    await run(bot, "/flag off new-chekout test")
    assert not bot.slack.messages(RELEASES), "no card for an unknown flag"
    answer = last_answer(bot)
    assert "no flag `new-chekout`" in answer.text and "`new-checkout`" in answer.text
    (button,) = answer_buttons(answer)
    assert button["text"]["text"] == "Propose /flag off new-checkout test"
    assert button["value"] == "off new-checkout test"
    await click_answer(bot, answer)
    assert buttons(bot) == ["Apply", "Cancel"], "the click proposes, it does not apply"
    assert "read as" not in card_text(bot)
    assert not bot.ld_patches()
    await click(bot, "Apply")
    assert flag(bot, "new-checkout")["environments"]["test"]["on"] is False


async def test_the_guess_runs_as_whoever_clicks_it(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout tset")
    answer = last_answer(bot)
    assert "no environment `tset`" in answer.text
    (button,) = answer_buttons(answer)
    assert button["text"]["text"] == "Propose /flag off new-checkout test"
    await click_answer(bot, answer, user=BOB)
    assert f"<@{BOB}> wants to change" in card_text(bot)


async def test_a_verb_people_mean_and_a_close_segment_are_guessed_too(bot: Harness) -> None:
    await run(bot, "/flag stop new-checkout test")
    (button,) = answer_buttons(last_answer(bot))
    assert button["value"] == "off new-checkout test"
    await run(bot, "/flag add rule new-checkout test if in segment beta-tester serve true")
    (button,) = answer_buttons(last_answer(bot))
    assert button["value"] == "add rule new-checkout test if in segment beta-testers serve true"
    await click_answer(bot, last_answer(bot))
    assert buttons(bot) == ["Apply", "Cancel"]


async def test_no_button_when_the_corrected_command_would_not_read(bot: Harness) -> None:
    await run(bot, "/flag stop new-checkout test and more words")
    answer = last_answer(bot)
    assert "did you mean" in answer.text.lower()
    assert not answer_buttons(answer), "`off new-checkout test and more words` is not a command"
    assert not bot.slack.messages(RELEASES)


async def test_a_guess_whose_command_is_wrong_elsewhere_answers_that_when_clicked(bot: Harness) -> None:
    await run(bot, "/flag off new-chekout tset")
    await click_answer(bot, last_answer(bot))
    answer = last_answer(bot)
    assert "no environment `tset`" in answer.text
    (button,) = answer_buttons(answer)
    assert button["value"] == "off new-checkout test", "the next guess, on the corrected command"
    assert not bot.slack.messages(RELEASES) and not bot.ld_patches(dry_runs=True)


async def test_a_forged_guess_value_is_only_a_command_typed_by_the_clicker(bot: Harness) -> None:
    def forged(value: str) -> Message:
        button = {"type": "button", "action_id": "propose_guess", "value": value}
        button["text"] = {"type": "plain_text", "text": "Propose"}
        return Message(RELEASES, "1.0", "x", [{"type": "actions", "elements": [button]}], "UBOT")

    await click(bot, "Propose", user=BOB, message=forged("x" * 2001))
    assert "not for me" in last_answer(bot, BOB).text
    await click(bot, "Propose", user=BOB, message=forged("delete new-checkout"))
    assert "type the key again" in last_answer(bot, BOB).text, "the grammar's checks apply"
    await click(bot, "Propose", user=BOB, message=forged("on new-checkout production"))
    assert f"<@{BOB}> wants" in card_text(bot) and "Request approval" in buttons(bot)
    assert not bot.ld_patches()


# --- a mention is a person ------------------------------------------------------------------------


async def test_a_mention_targets_that_persons_email_as_a_user_key(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test <@U_CAROL|carol> -> true")
    text = card_text(bot)
    assert "<@U_CAROL> as user `carol@example.com`" in text
    assert "carol@example.com" in text.split("read as")[1]
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["kind"] == "addTargets" and instruction["values"] == ["carol@example.com"]
    assert instruction["contextKind"] == "user"


async def test_mentions_that_cannot_be_targeted_are_refused_in_plain_words(bot: Harness) -> None:
    bot.slack.add_user("U_GHOST", "ghost")  # no email visible
    lines = [
        "/flag target new-checkout test <@U_NOBODY> -> true",
        "/flag target new-checkout test <@U_GHOST> -> true",
        "/flag target new-checkout test <!channel> -> true",
        "/flag target new-checkout test device:<@U_CAROL> -> true",
        "/flag target new-checkout test &lt;@U_CAROL&gt; -> true",
        "/flag target new-checkout test " + ",".join(f"<@U{n:04d}>" for n in range(200)) + " -> true",
    ]
    for line in lines:
        await run(bot, line)
    answers = [e.text for e in bot.slack.ephemerals(ALICE)]
    assert len(answers) == len(lines), answers
    assert "knows no person <@U_NOBODY>" in answers[0]
    assert "no email for <@U_GHOST>" in answers[1]
    assert "expected a context key" in answers[2] and "channel" in answers[2]
    assert "targeted as a user, not as device" in answers[3]
    assert "looks like a Slack mention" in answers[4]
    assert "200 people mentioned: at most 25" in answers[5]
    assert not bot.slack.messages(RELEASES) and not bot.ld_patches(dry_runs=True)
    assert len(bot.slack.calls_to("users.info")) < 10, "200 mentions are not 200 look-ups"


# --- a partly redundant change drops the redundant part -----------------------------------------


async def test_already_targeted_keys_are_left_out_and_said(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test alice,carol -> true")  # alice is served true
    assert "`alice` is already served true: left out" in card_text(bot)
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["kind"] == "addTargets" and instruction["values"] == ["carol"]


async def test_a_scheduled_change_is_not_reduced(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test alice,carol -> true in 2 hours")
    assert "left out" not in card_text(bot) and "Scheduled for" in card_text(bot)


async def test_removing_absent_targets_and_tags_sends_only_the_rest(bot: Harness) -> None:
    await run(bot, "/flag untarget new-checkout test alice,zed")
    assert "`zed` is not targeted: left out" in card_text(bot)
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["kind"] == "removeTargets" and instruction["values"] == ["alice"]
    await run(bot, "/flag add tags new-checkout web,mobile")
    assert "`web` is already on the flag: left out" in card_text(bot)
    await click(bot, "Apply")
    added = bot.ld_patches()[-1]["body"]["instructions"]
    assert added == [{"kind": "addTags", "values": ["mobile"]}]


async def test_a_wholly_redundant_change_is_refused_with_the_state(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test alice,bob -> true")
    await run(bot, "/flag untarget new-checkout test zed")
    told = bot.ephemeral_texts(ALICE)
    assert "Nothing to change on new-checkout in test: `alice`, `bob` are already served true" in told[0]
    assert "`zed` is not targeted" in told[1]
    assert not bot.slack.messages(RELEASES) and not bot.ld_patches(dry_runs=True)


# --- free text without quotes --------------------------------------------------------------------


async def test_names_and_descriptions_need_no_quotes(bot: Harness) -> None:
    await run(bot, "/flag rename banner-color Bännér cölör 🎨")
    await click(bot, "Apply")
    assert flag(bot, "banner-color")["name"] == "Bännér cölör 🎨"
    await run(bot, "/flag describe banner-color The colour of the banner, in <brackets> & all 🎨")
    await click(bot, "Apply")
    assert flag(bot, "banner-color")["description"] == "The colour of the banner, in <brackets> & all 🎨"


async def test_a_comment_after_m_needs_no_quotes(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test -m rolled back: checkout errors 🎉")
    await click(bot, "Apply")
    (patch,) = bot.ld_patches()
    assert patch["body"]["comment"].endswith("rolled back: checkout errors 🎉")
    await run(bot, "/flag on new-checkout -m QA production")
    assert "say the environment before it" in bot.ephemeral_texts(ALICE)[-1], "never a guessed environment"


async def test_a_day_before_at_and_a_backticked_key(bot: Harness) -> None:
    await run(bot, "/flag off `new-checkout` test tomorrow at 9am")
    text = card_text(bot)
    assert "Scheduled for" in text and "9:00" in text
    assert buttons(bot) == ["Apply", "Cancel"]


async def test_reminder_text_needs_no_quotes(bot: Harness) -> None:
    await run(bot, "/flag remind holiday-banner in 2 weeks remove this flag 🎄")
    told = bot.ephemeral_texts(ALICE)[-1]
    assert "remind" in told and "“remove this flag 🎄”" in told


async def test_hostile_free_text_gets_plain_answers(bot: Harness) -> None:
    await run(bot, "/flag rename banner-color a\x00b")
    assert "control character" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag rename banner-color <!channel> Ünïcødé " + "é" * 5000)
    assert buttons(bot) == ["Apply", "Cancel"], "a long name makes a card that fits Slack's limits"
    await click(bot, "Apply")
    assert flag(bot, "banner-color")["name"].startswith("<!channel> Ünïcødé é")
    assert len(bot.ld_patches()) == 1


async def test_a_guess_that_changes_nothing_runs_and_one_too_long_for_a_button_has_none(bot: Harness) -> None:
    await run(bot, "/flag what is new-chekout")
    (button,) = answer_buttons(last_answer(bot))
    assert button["text"]["text"] == "Run /flag what is new-checkout"
    await click_answer(bot, last_answer(bot))
    assert "ON · serves" in answer_text(last_answer(bot))
    await run(bot, "/flag rollout new-chekout test 25%")
    (button,) = answer_buttons(last_answer(bot))
    assert button["value"] == "rollout new-checkout test 25%"
    await run(bot, "/flag off new-chekout test -m " + "why " * 600)
    answer = last_answer(bot)
    assert "`new-checkout`" in answer.text and not answer_buttons(answer), "a value over 2,000 characters"
    assert not bot.slack.messages(RELEASES)


async def test_the_variation_may_come_before_the_person(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test true <@U_TARA>")
    assert "read as `/flag target new-checkout test tara@example.com -&gt; true`" in card_text(bot)
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["values"] == ["tara@example.com"]


async def test_a_misspelt_variation_is_guessed_too(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test carol -&gt; ture")
    answer = last_answer(bot)
    assert 'no variation "ture"' in answer.text
    (button,) = answer_buttons(answer)
    assert button["value"] == "target new-checkout test carol -&gt; true"
    assert button["text"]["text"] == "Propose /flag target new-checkout test carol -> true"
    await click_answer(bot, answer)
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["values"] == ["carol"]


def test_the_correction_replaces_whole_words_only() -> None:
    assert corrected_text("off new-chekout  test", "new-chekout", "new-checkout") == "off new-checkout test"
    assert corrected_text("off new-chekout-2 test", "new-chekout", "new-checkout") is None
    assert corrected_text("off `x` --env=tset", "tset", "test") == "off `x` --env=test"
    assert corrected_text("delete a.b confirm a.b", "a.b", "ab") == "delete ab confirm ab"
    assert corrected_text("off axb test", "a.b", "ab") is None, "a dot is not a wildcard"


# --- review of issue 16: tokens, free text that could be a schedule, mentions in comments ---------

SLACK_TOKEN = "xoxp-1234-5678-SECRETabcdef"
LD_TOKEN = "api-3f2a9c1e-7b4d-4e8a-9f10-2b3c4d5e6f70"


async def inbox_rows(bot: Harness) -> list[InboxRow]:
    return await InboxStore(bot.store.engine).rows()


def everything_slack_saw(bot: Harness) -> str:
    calls = [json.dumps(c.params, default=str) for c in bot.slack.calls]
    posts = [json.dumps(r.payload, default=str) for r in bot.slack.responses]
    return "\n".join(calls + posts)


async def test_a_misspelt_account_verb_offers_the_bare_verb_and_never_stores_the_token(bot: Harness) -> None:
    await run(bot, f"/flag link-acount {SLACK_TOKEN}")
    answer = last_answer(bot)
    assert 'did you mean "link-account"' in answer.text and "not read, shown or kept" in answer.text
    (button,) = answer_buttons(answer)
    assert button["text"]["text"] == "Run /flag link-account" and button["value"] == "link-account"
    assert "SECRETabcdef" not in everything_slack_saw(bot)
    assert await inbox_rows(bot) == [], "the misspelt command is answered from its listener"
    await click_answer(bot, answer)
    assert await inbox_rows(bot) == [], "nor is the click on its guess written"
    assert "SECRETabcdef" not in everything_slack_saw(bot)
    for line in (f"/flag unlink-acount {SLACK_TOKEN}", f"/flag login {SLACK_TOKEN}", "/flag linkaccount x y"):
        await run(bot, line)
        (button,) = answer_buttons(last_answer(bot))
        assert button["value"] in ("link-account", "unlink-account")
    assert await inbox_rows(bot) == [] and "SECRETabcdef" not in everything_slack_saw(bot)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"/flag target new-checkout test {SLACK_TOKEN} -> true", SLACK_TOKEN),
        (f"/flag off new-checkout test -m {LD_TOKEN}", LD_TOKEN),
        ("/flag on sdk-3f2a9c1e-7b4d-4e8a-9f10-2b3c4d5e6f70 test", "sdk-3f2a9c1e-7b4d"),
        ("/flag rename banner-color aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9", "aB3dE5fG7hJ9"),
        ("/flag describe banner-color 0123456789abcdef0123456789abcdef01234567", "0123456789abcdef"),
        (f"/flag {SLACK_TOKEN}", SLACK_TOKEN),
    ],
)
async def test_a_command_holding_a_token_is_refused_unread_and_never_stored(
    bot: Harness, line: str, secret: str
) -> None:
    await run(bot, line)
    answer = last_answer(bot)
    assert "looks like a token or key" in answer.text and "did not run it" in answer.text
    assert not answer_buttons(answer)
    assert secret[4:] not in everything_slack_saw(bot)
    assert await inbox_rows(bot) == []
    assert not bot.slack.messages(RELEASES) and not bot.ld_patches(dry_runs=True)


async def test_keys_that_only_look_long_are_not_taken_for_tokens(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test 3f2a9c1e-7b4d-4e8a-9f10-2b3c4d5e6f70 -> true")
    assert buttons(bot) == ["Apply", "Cancel"], "a UUID context key is a key"
    await run(bot, "/flag describe banner-color The api-v2 rollout for enterprise-customers-in-europe-west")
    assert buttons(bot) == ["Apply", "Cancel"]
    assert [row.handler for row in await inbox_rows(bot)] == ["command", "command"]


async def test_a_forged_guess_holding_a_token_is_refused_unstored(bot: Harness) -> None:
    button = {"type": "button", "action_id": "propose_guess", "value": f"off new-checkout test -m {LD_TOKEN}"}
    button["text"] = {"type": "plain_text", "text": "Propose"}
    message = Message(RELEASES, "1.0", "x", [{"type": "actions", "elements": [button]}], "UBOT")
    await click(bot, "Propose", user=BOB, message=message)
    assert "looks like a token or key" in last_answer(bot, BOB).text
    assert await inbox_rows(bot) == []


@pytest.mark.parametrize(
    ("line", "asked"),
    [
        ("/flag off new-checkout production -m will re-enable in 2 hours", '-m "will re-enable" in 2 hours'),
        ("/flag off new-checkout production -m see INC-1 in 5m", '-m "see INC-1" in 5m'),
        ("/flag rename banner-color Sale in 2 days", 'rename banner-color "Sale" in 2 days'),
        ("/flag describe banner-color Use -m for messages", 'describe banner-color "Use -m for messages"'),
    ],
)
async def test_unquoted_free_text_that_could_end_in_a_schedule_or_option_is_asked(
    bot: Harness, line: str, asked: str
) -> None:
    await run(bot, line)
    answer = last_answer(bot).text
    assert "Did you mean to schedule this?" in answer or "part of the new description" in answer
    assert asked in answer.replace("&quot;", '"')
    assert not bot.slack.messages(RELEASES) and not bot.ld_patches(dry_runs=True)


async def test_at_that_is_not_a_time_is_part_of_a_description_and_a_plain_off_still_schedules(
    bot: Harness,
) -> None:
    await run(bot, "/flag describe banner-color Shown to users at checkout")
    assert "Scheduled for" not in card_text(bot)
    await click(bot, "Apply")
    assert flag(bot, "banner-color")["description"] == "Shown to users at checkout"
    await run(bot, "/flag off new-checkout production tomorrow at 9am")
    assert "Scheduled for" in card_text(bot)
    await run(bot, '/flag off new-checkout test -m "will re-enable" in 2 hours')
    assert "Scheduled for" in card_text(bot) and "will re-enable" in card_text(bot)


async def test_a_comment_may_start_with_a_mention_and_never_pings(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test -m <@U_BOB> asked <!channel> to look")
    text = card_text(bot)
    assert buttons(bot) == ["Apply", "Cancel"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    await click(bot, "Apply")
    (patch,) = bot.ld_patches()
    assert patch["body"]["comment"].endswith("<@U_BOB> asked <!channel> to look")
    assert "<!channel>" not in everything_slack_saw(bot).replace("<!channel> to look", "")


async def test_an_email_with_capitals_is_the_key_as_slack_has_it_and_the_card_says_so(bot: Harness) -> None:
    bot.slack.add_user("U_MIXED", "mixed", email="Bob.Mixed@Example.COM")
    await run(bot, "/flag target new-checkout test <@U_MIXED> -> true")
    text = card_text(bot)
    assert "<@U_MIXED> as user `Bob.Mixed@Example.COM`" in text
    assert "case-sensitive" in text and "`bob.mixed@example.com`" in text
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["values"] == ["Bob.Mixed@Example.COM"]
    await run(bot, "/flag target new-checkout test <@U_CAROL> -> true")
    assert "case-sensitive" not in card_text(bot), "a lower-case email needs no note"


async def test_the_guess_corrects_only_the_occurrence_it_is_about(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout tset tset -> true")
    (button,) = answer_buttons(last_answer(bot))
    assert button["value"] == "target new-checkout test tset -> true", "the target `tset` stays"
    await click_answer(bot, last_answer(bot))
    await click(bot, "Apply")
    (instruction,) = sent_instructions(bot)
    assert instruction["values"] == ["tset"]


async def test_a_huge_unknown_command_is_not_echoed_whole(bot: Harness) -> None:
    await run(bot, "/flag " + "x" * 2000)
    answer = last_answer(bot)
    assert "x" * 61 not in everything_slack_saw(bot) and "…" in answer.text
    await run(bot, "/flag off " + "y" * 2000 + " test")
    assert "y" * 201 not in everything_slack_saw(bot)


async def test_a_misspelt_ramp_gets_a_guess_button(bot: Harness) -> None:
    await run(bot, "/flag serve new-checkout test false")
    await click(bot, "Apply")
    await run(bot, "/flag ramp new-chekout test 5% 100% every 30m")
    answer = last_answer(bot)
    (button,) = answer_buttons(answer)
    assert button["value"] == "ramp new-checkout test 5% 100% every 30m"
    assert button["text"]["text"] == "Propose /flag ramp new-checkout test 5% 100% every 30m"
    await click_answer(bot, answer)
    assert "Apply" in buttons(bot) and "ramp" in card_text(bot).lower()


def test_the_correction_replaces_the_guessed_occurrence_only() -> None:
    assert corrected_text("target new-checkout tset tset -> true", "tset", "test") == (
        "target new-checkout test tset -> true"
    )
    assert corrected_text("target new-checkout test ture -> ture", "ture", "true") == (
        "target new-checkout test ture -> true"
    )
    assert corrected_text("on x tset; off x tset", "tset", "test") == "on x test; off x test"
    assert corrected_text("stp x stp", "stp", "off") == "off x stp"
