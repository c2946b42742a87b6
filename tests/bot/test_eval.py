"""``/flag eval``: what a context gets and why, through signed HTTP, the fake Slack and the sandbox,
which evaluates as LaunchDarkly documents (``commands.evaluation``, checked against the SDKs' own
test data in ``tests/commands/test_evaluation.py``)."""

from __future__ import annotations

import json
from typing import Any

from tests.bot.harness import ALICE, Harness, click, run


def answer(bot: Harness, user: str = ALICE) -> str:
    """Everything the person's latest ephemeral answer says."""
    last = bot.slack.ephemerals(user)[-1]
    return last.text + "\n" + "\n".join(json.dumps(b, ensure_ascii=False) for b in last.blocks)


def evaluations(bot: Harness) -> list[dict[str, Any]]:
    return [r for r in bot.ld_requests() if r["path"].endswith("/flags/evaluate")]


async def test_an_individual_target(bot: Harness) -> None:
    await run(bot, "/flag eval new-checkout test user:alice")
    text = answer(bot)
    assert "*user alice* gets *Enabled (true)* from *New checkout* (`new-checkout`) in *test*" in text
    assert "*individual target*" in text
    assert "user alice is listed in the flag's individual targets" in text
    (request,) = evaluations(bot)
    assert (
        request["method"] == "POST"
        and request["path"] == "/api/v2/projects/demo/environments/test/flags/evaluate"
    )
    assert request["body"] == {"kind": "user", "key": "alice"}
    assert request["query"]["filter"] == "query equals new-checkout"
    assert bot.slack.messages("C_RELEASES") == [], "the answer is for the person who asked"


async def test_a_rule_with_the_clauses_that_matched_and_the_bucket(bot: Harness) -> None:
    await run(bot, "/flag eval pricing-page production user:jo country=DE plan=pro")
    text = answer(bot)
    # EU customers get 25% new pricing; jo's bucket in production (its own salt) is past 25.
    assert "*user jo* gets *Old pricing (v1)*" in text
    assert (
        "It matches *rule 2* (EU customers): if user country in DE, FR, NL and user plan not in free" in text
    )
    assert "as flagops reads the flag" in text, "the clause detail is labelled as flagops' own"
    no, yes = ":heavy_multiplication_x:", ":heavy_check_mark:"
    assert f"{no} Rule 1 (Beta testers): context is in segment beta-testers — not a member" in text
    assert f"{yes} *Rule 2 (EU customers)* matches, every condition holds" in text
    assert f"{yes} country is one of DE, FR, NL — country is DE" in text
    assert f"{yes} plan is not free — plan is pro" in text
    assert "this context's bucket is *" in text and "in the slice 25–100 → Old pricing (v1)" in text
    assert "*Context*: user jo (country=DE, plan=pro)" in text
    assert evaluations(bot)[0]["body"] == {"kind": "user", "key": "jo", "country": "DE", "plan": "pro"}


async def test_a_multi_context_matches_a_rule_on_two_kinds(bot: Harness) -> None:
    await run(bot, "/flag eval pricing-page test user:sam email=sam@example.com organization:acme tier=3")
    text = answer(bot)
    assert "*user sam + organization acme* gets *New pricing (v2)*" in text
    assert "*rule 3* (Internal staff)" in text
    assert ":heavy_check_mark: organization.tier is at least 2 — tier is 3" in text
    assert evaluations(bot)[0]["body"] == {
        "kind": "multi",
        "user": {"key": "sam", "email": "sam@example.com"},
        "organization": {"key": "acme", "tier": 3},
    }


async def test_the_default_rule_says_why_no_rule_matched(bot: Harness) -> None:
    await run(bot, "/flag eval pricing-page test user:zed country=US")
    text = answer(bot)
    assert "gets *Old pricing (v1)*" in text and "the *default rule* serves it: Old pricing (v1)" in text
    no = ":heavy_multiplication_x:"
    assert f"{no} Rule 2 (EU customers): country is one of DE, FR, NL — country is US" in text
    assert f"{no} Rule 3 (Internal staff): email ends with @example.com — no attribute email" in text


async def test_a_rollout_bucket(bot: Harness) -> None:
    # banner-color in test: 50% blue, 50% green by user key. bob's bucket is 71.082 (flag key
    # banner-color, the demo's salt for test): green.
    await run(bot, "/flag eval banner-color test user:bob")
    text = answer(bot)
    assert "*user bob* gets *Green (green)*" in text
    assert "this context's bucket is *71.082* of 100, in the slice 50–100 → Green (green)" in text
    await run(bot, "/flag eval banner-color test alice")
    assert "gets *Blue (blue)*" in answer(bot) and "*31.707* of 100, in the slice 0–50" in answer(bot)


async def test_a_failed_prerequisite_and_targeting_off(bot: Harness) -> None:
    await run(bot, "/flag eval express-shipping test user:dana")
    assert "gets *true*" in answer(bot) and "*default rule*" in answer(bot)
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    await run(bot, "/flag eval express-shipping test user:dana")
    text = answer(bot)
    assert "gets *false*" in text
    assert "Its prerequisite *new-checkout* does not serve Enabled (true) to this context" in text
    assert "*new-checkout* serves Disabled (false) to this context (its targeting is off)" in text
    await run(bot, "/flag eval new-checkout production user:bob")
    assert "Targeting is *off* in *production*, so the flag serves its off variation" in answer(bot)


async def test_bad_contexts_get_a_usage_message_and_nothing_is_evaluated(bot: Harness) -> None:
    for text, says in [
        ("/flag eval new-checkout test", "whose evaluation?"),
        ("/flag eval new-checkout test country=US", "start the context with its key"),
        ("/flag eval new-checkout test user:alice country", "expected &lt;attribute&gt;=&lt;value&gt;"),
        ("/flag eval new-checkout test user:alice user:bob", "two user contexts"),
        ("/flag eval new-checkout user:alice", "expected an environment key"),
    ]:
        await run(bot, text)
        said = bot.ephemeral_texts(ALICE)[-1]
        assert says in said, (text, said)
        assert "Usage: `eval &lt;flag&gt; &lt;env&gt; [&lt;kind&gt;:]&lt;key&gt;" in said, said
    assert evaluations(bot) == []


async def test_unknown_flag_and_environment(bot: Harness) -> None:
    await run(bot, "/flag eval new-chekout test user:alice")
    assert "There is no flag `new-chekout`" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag eval new-checkout staging user:alice")
    assert "There is no environment `staging`" in bot.ephemeral_texts(ALICE)[-1]
    assert evaluations(bot) == []


async def test_no_clause_detail_when_flagops_reads_the_flag_differently(bot: Harness) -> None:
    # The segment cannot be read, so flagops cannot tell that ann is in it; LaunchDarkly can.
    bot.sandbox.faults.paths = ["/api/v2/segments/"]
    bot.sandbox.faults.error_every = 1
    bot.sandbox.faults.error_status = 404
    await run(bot, "/flag eval pricing-page test user:ann")
    text = answer(bot)
    assert "gets *New pricing (v2)*" in text and "*rule 1* (Beta testers)" in text
    assert "flagops' own reading of the flag differs (FALLTHROUGH)" in text
    assert ":heavy_check_mark:" not in text and ":heavy_multiplication_x:" not in text
