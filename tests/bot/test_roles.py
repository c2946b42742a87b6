"""Service-token actions obey the person's LaunchDarkly role (bot/identity/roles.py), end to end:
the Slack user's email → the sandbox's member, its built-in role, custom roles and teams → the
check at propose and again at Apply; a refusal names the missing permission and sends nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.bot.harness import ALICE, BOB, CAROL, RELEASES, Harness, buttons, card_text, click, run
from tests.bot.test_approvals import approval_card, approval_settings, env, requests_of, sandbox
from tests.bot.test_approvals import start as start_approvals
from tests.bot.test_oauth import connect_url

StartBot = Callable[..., Awaitable[Harness]]
TARA, PAT = "U_TARA", "U_PAT"  # tara: a reader with a targets-in-test role; pat: attribute + team


def set_role(bot: Harness, email: str, role: str) -> None:
    for account in bot.sandbox.accounts:
        if account.member["email"] == email:
            account.member["role"] = role
            account.writer = role in ("writer", "admin", "owner")


def no_card(bot: Harness) -> bool:
    return not bot.slack.messages(RELEASES)


def writes(bot: Harness) -> list[dict[str, Any]]:
    """Every write LaunchDarkly received (dry runs aside)."""
    return [
        r
        for r in bot.ld_requests()
        if r["method"] in ("PATCH", "POST", "DELETE") and str(r["query"].get("dryRun", "")).lower() != "true"
    ]


async def test_carol_a_reader_is_refused_at_propose_and_nothing_is_sent(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test", user=CAROL)
    assert no_card(bot)
    (answer,) = bot.ephemeral_texts(CAROL)
    assert "do not allow `updateOn` on test for new-checkout" in answer and "reader" in answer
    assert not bot.ld_patches(dry_runs=True) and not writes(bot)


async def test_carol_is_refused_again_at_apply(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_role_cache=0)
    set_role(bot, "carol@example.com", "writer")  # a writer when she proposes...
    await run(bot, "/flag off new-checkout test", user=CAROL)
    assert "Apply" in buttons(bot)
    set_role(bot, "carol@example.com", "reader")  # ...made a reader before she presses Apply
    await click(bot, "Apply", user=CAROL)
    assert "do not allow `updateOn` on test for new-checkout" in bot.ephemeral_texts(CAROL)[-1]
    assert not bot.ld_patches() and not writes(bot)
    assert "Applied" not in card_text(bot)
    set_role(bot, "carol@example.com", "writer")  # the card still stands: her rights back, it applies
    await click(bot, "Apply", user=CAROL)
    assert len(bot.ld_patches()) == 1


async def test_role_is_remembered_briefly(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test", user=ALICE)
    set_role(bot, "alice@example.com", "reader")
    await click(bot, "Apply", user=ALICE)  # within FLAGOPS_ROLE_CACHE (60 s): still a writer here
    assert len(bot.ld_patches()) == 1


async def test_a_custom_role_limited_to_targets_in_test(bot: Harness) -> None:
    await run(bot, "/flag target new-checkout test user:sam -> true", user=TARA)
    assert "Apply" in buttons(bot)
    await click(bot, "Apply", user=TARA)
    assert len(bot.ld_patches()) == 1
    await run(bot, "/flag off new-checkout test", user=TARA)
    assert "do not allow `updateOn` on test for new-checkout" in bot.ephemeral_texts(TARA)[-1]
    assert "custom role test-targeter" in bot.ephemeral_texts(TARA)[-1]
    await run(bot, "/flag serve banner-color test green", user=TARA)
    assert "`updateFallthrough` on test for banner-color" in bot.ephemeral_texts(TARA)[-1]
    # production requires approval: asking for it is what she would need, and may not
    await run(bot, "/flag target new-checkout production user:sam -> true", user=TARA)
    assert "`createApprovalRequest` on production for new-checkout" in bot.ephemeral_texts(TARA)[-1]
    assert len(bot.ld_patches()) == 1 and len(bot.slack.messages(RELEASES)) == 1


async def test_a_role_attribute_and_a_team_role_combine(bot: Harness) -> None:
    # pat: no_access, the custom role "project-toggler" (its project from a role attribute, critical
    # environments denied) and the team "qa" with "test-targeter".
    await run(bot, "/flag off new-checkout test", user=PAT)
    await click(bot, "Apply", user=PAT)
    await run(bot, "/flag target new-checkout test user:sam -> true", user=PAT)
    await click(bot, "Apply", user=PAT)
    assert len(bot.ld_patches()) == 2
    await run(bot, "/flag add tags new-checkout beta", user=PAT)
    answer = bot.ephemeral_texts(PAT)[-1]
    assert "`updateTags` for new-checkout (a flag-level setting, every environment)" in answer
    assert "team qa: test-targeter" in answer


async def test_a_slack_user_with_no_member_is_refused_by_default(bot: Harness) -> None:
    bot.slack.add_user("U_ZED", "zed", email="zed@example.com")
    await run(bot, "/flag off new-checkout test", user="U_ZED")
    assert no_card(bot)
    assert "not a LaunchDarkly member's" in bot.ephemeral_texts("U_ZED")[-1]
    bot.slack.add_user("U_NOMAIL", "nomail")  # Slack gives no email: no member can be found
    await run(bot, "/flag off new-checkout test", user="U_NOMAIL")
    assert "not a LaunchDarkly member's" in bot.ephemeral_texts("U_NOMAIL")[-1]
    assert no_card(bot) and not bot.ld_patches(dry_runs=True)


async def test_unmapped_users_may_use_the_service_token_when_configured(start_bot: StartBot) -> None:
    bot = await start_bot(flagops_unmapped_users="service-token")
    bot.slack.add_user("U_ZED", "zed", email="zed@example.com")
    await run(bot, "/flag off new-checkout test", user="U_ZED")
    await click(bot, "Apply", user="U_ZED")
    assert len(bot.ld_patches()) == 1
    await run(bot, "/flag on new-checkout test", user=CAROL)  # a member still gets their role
    assert "do not allow `updateOn`" in bot.ephemeral_texts(CAROL)[-1]


async def test_lookups_that_fail_refuse(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test", user="U_GHOST")  # users.info: user_not_found
    assert no_card(bot)
    answer = bot.ephemeral_texts("U_GHOST")[-1]
    assert "could not check your LaunchDarkly roles" in answer and "user_not_found" in answer


async def test_where_oauth_is_set_up_the_refusal_offers_connect(start_bot: StartBot) -> None:
    bot = await start_bot(sandbox=sandbox(), oauth=True)
    await run(bot, "/flag off new-checkout test", user=CAROL)
    assert no_card(bot)
    assert any("do not allow `updateOn`" in t for t in bot.ephemeral_texts(CAROL))
    assert connect_url(bot, CAROL).startswith("http")


async def test_approval_cards_check_the_reviewer_and_the_applier(start_bot: StartBot) -> None:
    bot = await start_approvals(start_bot)
    approval_settings(bot, "production")["canReviewOwnRequest"] = True
    await run(bot, "/flag on new-checkout production")
    await click(bot, "Request approval")
    (stored,) = requests_of(bot)
    await click(bot, "Approve", user=CAROL, message=approval_card(bot))
    assert "`reviewApprovalRequest` on production for new-checkout" in bot.ephemeral_texts(CAROL)[-1]
    assert not stored.doc.get("allReviews")
    await click(bot, "Approve", user=BOB, message=approval_card(bot))
    await click(bot, "Apply", user=CAROL, message=approval_card(bot))
    assert "`applyApprovalRequest` on production for new-checkout" in bot.ephemeral_texts(CAROL)[-1]
    assert env(bot, "new-checkout", "production")["on"] is False
    await click(bot, "Apply", user=BOB, message=approval_card(bot))
    assert env(bot, "new-checkout", "production")["on"] is True


async def test_asking_for_approval_needs_create_approval_request(bot: Harness) -> None:
    await run(bot, "/flag on new-checkout production", user=CAROL)
    assert no_card(bot)
    assert "`createApprovalRequest` on production for new-checkout" in bot.ephemeral_texts(CAROL)[-1]
    assert not bot.sandbox.approvals
