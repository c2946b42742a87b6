"""``FLAGOPS_REQUIRE_LINKED_ACCOUNTS=true`` on a plain change card: an unlinked user's Apply is
refused with "link your account first" and nothing reaches LaunchDarkly; once linked, the same card
applies as the user's own member."""

from __future__ import annotations

from tests.bot.harness import ALICE, click, run
from tests.bot.test_approvals import StartBot, audit, env, labels, link, member_id, start


async def test_an_unlinked_apply_is_refused_until_the_account_is_linked(start_bot: StartBot) -> None:
    bot = await start(start_bot, flagops_require_linked_accounts=True)
    await run(bot, "/flag off new-checkout test")
    card = bot.card()
    await click(bot, "Apply")
    refusal = bot.ephemeral_texts(ALICE)[-1]
    assert "/flag link-account" in refusal and "Nothing was changed" in refusal
    assert env(bot, "new-checkout", "test")["on"] is True
    assert not bot.ld_patches(), "nothing was sent to LaunchDarkly"
    assert labels(bot.slack.message(card.channel, card.ts)) == ["Apply", "Cancel"], "still offered"

    await link(bot, ALICE, "sandbox-alice")
    await click(bot, "Apply", message=bot.slack.message(card.channel, card.ts))
    assert env(bot, "new-checkout", "test")["on"] is False
    (patched,) = audit(bot, "semanticPatch")
    assert patched["memberId"] == member_id(bot, "alice@example.com"), "applied as alice's member"


async def test_without_the_setting_an_unlinked_apply_goes_through_the_service_token(
    start_bot: StartBot,
) -> None:
    bot = await start(start_bot)
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    assert env(bot, "new-checkout", "test")["on"] is False
