"""Ramps end to end (signed HTTP, the fake Slack, the sandbox over HTTP): ``ramp <flag> <env> 5% 25%
50% 100% every 30m`` is one card and one Apply making LaunchDarkly scheduled changes; in an approval
environment one approval request per step; **Pause** deletes what has not run and says what had."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.launchdarkly.sandbox import approvals as sandbox_approvals
from bot.launchdarkly.sandbox.changes import ApiError
from tests.bot.harness import ALICE, BOB, RELEASES, Harness, buttons, card_text, details
from tests.bot.test_said_loosely import answer_buttons, click_answer, last_answer

NOW = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)  # on the minute, after the sandbox's wall clock
HALF_HOUR_MS = 30 * 60 * 1000


@pytest.fixture(autouse=True)
def new_checkout_serves_false_in_test(bot: Harness) -> None:
    """A ramp goes up: the demo's ``new-checkout`` serves true to everyone in test, so these tests
    start it serving false there (a ramp of true from 5% would take true away from 95%)."""
    serve(bot, "new-checkout", "test", 1)


def serve(bot: Harness, flag: str, env: str, index: int) -> None:
    bot.sandbox.projects["demo"].flags[flag]["environments"][env]["fallthrough"] = {"variation": index}


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def run(bot: Harness, text: str, *, user: str = ALICE, at: datetime = NOW) -> None:
    bot.stack.runtime.changes.clock = lambda: at
    assert (await bot.command(text, user=user)).status_code == 200
    await bot.idle()


async def click(bot: Harness, which: str, *, user: str = ALICE, at: datetime = NOW) -> None:
    bot.stack.runtime.changes.clock = lambda: at
    assert (await bot.click(which, user=user)).status_code == 200
    await bot.idle()


def scheduled(bot: Harness) -> list[dict[str, Any]]:
    return sorted((s.doc for s in bot.sandbox.scheduled.values()), key=lambda d: d["executionDate"])


def weights(bot: Harness, flag: str, env: str) -> dict[int, int] | int:
    fallthrough: dict[str, Any] = bot.sandbox.projects["demo"].flags[flag]["environments"][env]["fallthrough"]
    if "variation" in fallthrough:
        return int(fallthrough["variation"])
    return {v["variation"]: v["weight"] for v in fallthrough["rollout"]["variations"]}


def ld_writes(bot: Harness) -> list[dict[str, Any]]:
    return [
        r
        for r in bot.ld_requests()
        if r["method"] in ("POST", "PATCH", "DELETE") and str(r["query"].get("dryRun")).lower() != "true"
    ]


async def test_a_ramp_is_one_card_one_apply_and_launchdarkly_runs_the_steps(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 25% 50% 100% every 30m")
    card = card_text(bot)
    assert buttons(bot) == ["Apply", "Cancel"]
    assert (
        "Ramp in test: 4 steps, every 30 minutes" in card
        and "the first comes 30 minutes after this card" in card
    )
    assert "Apply creates the 4 steps as LaunchDarkly scheduled changes" in card
    for n in range(1, 5):
        seconds = int((NOW + timedelta(minutes=30 * n)).timestamp())
        assert f"{n}. <!date^{seconds}^{{date_short_pretty}} {{time}}|" in card, "in the viewer's zone"
    assert "Before → after* (the first step)" in card and "5% Enabled (true)" in card
    assert not ld_writes(bot), "nothing is created before Apply"

    await click(bot, "Apply", at=NOW + timedelta(minutes=2))
    docs = scheduled(bot)
    assert [d["executionDate"] for d in docs] == [ms(NOW) + n * HALF_HOUR_MS for n in range(1, 5)]
    rollouts = [d["instructions"][0] for d in docs]
    assert [r["kind"] for r in rollouts] == ["updateFallthroughVariationOrRollout"] * 4
    true, false = first_id(bot, "new-checkout", 0), first_id(bot, "new-checkout", 1)
    assert [r["rolloutWeights"] for r in rollouts[:3]] == [
        {true: 5000, false: 95000},
        {true: 25000, false: 75000},
        {true: 50000, false: 50000},
    ]
    assert "variationId" in rollouts[3] and "rolloutWeights" not in rollouts[3], "100%: served fully"
    posts = [r for r in ld_writes(bot) if r["path"].endswith("/scheduled-changes")]
    assert [str(r["query"].get("ignoreConflicts", "false")).lower() for r in posts] == [
        "false",
        "true",
        "true",
        "true",
    ], "the later steps conflict with the first on purpose; the first one is sent as the card says"
    card = card_text(bot)
    assert buttons(bot) == ["Pause"]
    assert "Ramp scheduled by <@U_ALICE>" in card
    for doc in docs:
        assert doc["_id"] not in card, "the ids are behind Details, not in the card"
    assert "4 scheduled changes created" in bot.thread()[-1].text
    said = await details(bot)
    assert all(f"scheduled change `{doc['_id']}` (created)" in said for doc in docs), said

    # LaunchDarkly runs steps 1 and 2 at their times; Pause then deletes 3 and 4.
    sandbox_approvals.run_due(bot.sandbox, docs[1]["executionDate"])
    assert weights(bot, "new-checkout", "test") == {0: 25000, 1: 75000}
    await click(bot, "Pause", at=NOW + timedelta(minutes=75))
    assert not bot.sandbox.scheduled, "the steps not yet run are deleted"
    card = card_text(bot)
    assert (
        "Paused by <@U_ALICE>: deleted steps 3 and 4 from LaunchDarkly. Steps 1 and 2 are no longer in "
        "LaunchDarkly (their times have passed)." in card
    ), "the clock alone does not prove they ran"
    assert "had already run" not in card
    assert "scheduled change deleted by Pause" in card
    assert buttons(bot) == [], "nothing left to pause"
    assert "Paused by" in bot.thread()[-1].text
    assert weights(bot, "new-checkout", "test") == {0: 25000, 1: 75000}, "the flag keeps what it serves"


@pytest.mark.parametrize(
    ("typed", "steps"),
    [
        ("/flag ramp new-checkout test 5 25 50 100 every 30 minutes", 4),
        ("/flag ramp new-checkout in test 10%, 50% then 100% every 1h", 3),
        ("/flag ramp New-Checkout Test to 20% 40% every 2 hours", 2),
    ],
)
async def test_other_ways_of_saying_a_ramp(bot: Harness, typed: str, steps: int) -> None:
    await run(bot, typed)
    assert f"{steps} steps" in card_text(bot) and buttons(bot) == ["Apply", "Cancel"]


async def test_a_multivariate_ramp_names_its_variation_and_ends_serving_it(bot: Harness) -> None:
    await run(bot, "/flag ramp pricing-page test 10% 50% 100% v2 every 1h")  # test serves v1 now
    assert "3 steps, every 1 hour" in card_text(bot)
    await click(bot, "Apply")
    first, second, last = (d["instructions"][0] for d in scheduled(bot))
    assert first["rolloutWeights"] == {
        first_id(bot, "pricing-page", 0): 10000,
        first_id(bot, "pricing-page", 1): 90000,
    }
    assert second["rolloutWeights"][first_id(bot, "pricing-page", 0)] == 50000
    assert last["variationId"] == first_id(bot, "pricing-page", 0), "100% serves v2 fully"
    await run(bot, "/flag ramp banner-color test 10% 100% every 1h")
    assert "Which variation does the ramp of `banner-color` serve more of?" in bot.ephemeral_texts(ALICE)[-1]
    await run(bot, "/flag ramp banner-color test 10% 100% red every 1h")  # test serves a rollout now
    assert "where the other 90% go" in bot.ephemeral_texts(ALICE)[-1]


def first_id(bot: Harness, flag: str, index: int) -> str:
    return str(bot.sandbox.projects["demo"].flags[flag]["variations"][index]["_id"])


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("/flag ramp new-checkout test 50% 25% every 30m", "the steps must go up"),
        ("/flag ramp new-checkout test 5% 120% every 30m", "at most 100"),
        ("/flag ramp new-checkout test 5% 100% every 1m", "at least 5 minutes apart"),
        ("/flag ramp new-checkout test 1 2 3 4 5 6 7 8 9 10 11 every 1h", "at most 10 steps"),
        ("/flag ramp new-checkout test 5% 100%", "`every` and the time between them"),
        ("/flag ramp new-checkout test 5% every fortnight", "is not a duration"),
        ("/flag ramp new-checkout test 5% every 8 days", "at most 7 days apart"),
        ("/flag ramp new-checkout prodution 5% every 1h", "no environment `prodution`"),
        ("/flag ramp <!channel> test 5% every 1h", "`every` and the time between them"),
        ("/flag ramp new-checkout ../x 5% every 1h", "`every` and the time between them"),
        ("/flag ramp new-checkout test 5% every 1h <!here>", "`every` and the time between them"),
        ("/flag ramp new-checkout test\x00 5% every 1h", "`every` and the time between them"),
        ("/flag ramp " + "n" * 5000 + " test 5% every 1h", "`every` and the time between them"),
    ],
)
async def test_a_ramp_that_cannot_be_is_refused_with_why_and_nothing_is_sent(
    bot: Harness, typed: str, said: str
) -> None:
    await run(bot, typed)
    assert not bot.slack.messages(RELEASES), "no card"
    (answer,) = bot.ephemeral_texts(ALICE)
    assert said in answer, answer
    assert "<!channel>" not in answer and "<!here>" not in answer
    assert not ld_writes(bot), "nothing sent"
    for request in bot.ld_requests():
        assert ".." not in request["path"], request["path"]


async def test_a_first_step_whose_time_came_before_apply_creates_nothing(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 100% every 5m")
    await click(bot, "Apply", at=NOW + timedelta(minutes=4, seconds=30))
    assert not bot.sandbox.scheduled
    assert "has come: nothing of the ramp was created" in card_text(bot)


async def test_a_step_that_fails_leaves_the_card_saying_exactly_which_exist(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_approvals.create_scheduled
    calls = {"n": 0}

    def third_refused(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ApiError(400, "invalid_request", "Instructions are not valid for this flag")
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox_approvals, "create_scheduled", third_refused)
    await run(bot, "/flag ramp new-checkout test 5% 25% 50% 100% every 30m")
    await click(bot, "Apply")
    first, second = scheduled(bot)
    card = card_text(bot)
    assert "Step 3 of 4 was not created" in card and "Instructions are not valid" in card
    assert "Steps 1 and 2 exist in LaunchDarkly and run at their times unless you press *Pause*" in card
    assert first["_id"] not in card and second["_id"] not in card, "ids are behind Details"
    assert card.count("not created") >= 3, "step 3 and 4 said not created"
    assert buttons(bot) == ["Pause"]
    await click(bot, "Pause")
    assert not bot.sandbox.scheduled
    assert "deleted steps 1 and 2" in card_text(bot)


async def test_a_lost_answer_is_looked_up_not_sent_twice(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_approvals.create_scheduled
    calls = {"n": 0}

    def second_answer_lost(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        doc = real(*args, **kwargs)
        if calls["n"] == 2:
            raise ApiError(502, "bad_gateway", "upstream timed out")  # created, the answer lost
        return doc

    monkeypatch.setattr(sandbox_approvals, "create_scheduled", second_answer_lost)
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% every 30m")
    await click(bot, "Apply")
    assert len(scheduled(bot)) == 3, "step 2 found by its time and instructions, not created again"
    assert buttons(bot) == ["Pause"] and "Ramp scheduled" in card_text(bot)


async def test_only_who_may_apply_may_pause(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    await click(bot, "Apply")
    await click(bot, "Pause", user=BOB)
    assert len(bot.sandbox.scheduled) == 2, "nothing deleted"
    assert "Pause follows the rule of Apply" in bot.ephemeral_texts(BOB)[-1]


async def test_in_an_approval_environment_each_step_is_its_own_approval_request(bot: Harness) -> None:
    await run(bot, "/flag config reviewers production <@U_BOB|bob>")
    await run(bot, "/flag ramp new-checkout production 25% 100% every 1h")
    card = card_text(bot)
    assert buttons(bot) == ["Request approval", "Cancel"]
    assert "Each step needs its own approval request" in card and "creates all 2 together" in card
    assert "*new-checkout* is OFF in *production*" in card, "the ramp changes what it serves once on"
    await click(bot, "Request approval")
    requests = sorted((a.doc for a in bot.sandbox.approvals.values()), key=lambda d: d["executionDate"])
    assert [r["executionDate"] for r in requests] == [ms(NOW + timedelta(hours=n)) for n in (1, 2)]
    assert "ramp step 1 of 2" in requests[0]["description"]
    bob_id = next(a.member_id for a in bot.sandbox.accounts if a.member["email"] == "bob@example.com")
    assert [r["notifyMemberIds"] for r in requests] == [[bob_id], [bob_id]], "the channel's reviewers"
    assert not bot.sandbox.scheduled, "nothing scheduled before a review"
    card = card_text(bot)
    assert "Approval requested by <@U_ALICE> for each of the 2 steps" in card
    assert "approval request (pending review)" in card and requests[0]["_id"] not in card
    assert buttons(bot) == ["Pause"]

    # A reviewer approves and applies step 1 (it becomes a scheduled change); Pause deletes it and
    # the pending request of step 2.
    stored = bot.sandbox.approvals[requests[0]["_id"]]
    stored.doc["reviewStatus"] = "approved"
    bob = next(a for a in bot.sandbox.accounts if a.token == "sandbox-bob")
    sandbox_approvals.apply_approval(bot.sandbox, bob, stored, {})
    assert len(bot.sandbox.scheduled) == 1
    await click(bot, "Pause")
    assert not bot.sandbox.scheduled, "step 1's scheduled change is deleted"
    assert list(bot.sandbox.approvals) == [requests[0]["_id"]], "step 2's pending request is deleted"
    assert "deleted steps 1 and 2" in card_text(bot)


async def test_a_5xx_on_the_first_step_leaves_it_unknown_and_never_asks_for_apply_again(bot: Harness) -> None:
    """LaunchDarkly may create a step whose answer was a 5xx: never "not created", never "Apply again"
    (a second Apply could schedule it twice); Pause looks for it, and stays while it may appear."""
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 503, "methods": ["POST"]}
    )
    await click(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    assert not bot.sandbox.scheduled
    card = card_text(bot)
    assert "Step 1 of 2: unknown whether it was created" in card, card
    assert "may still create it" in card and "Apply again" not in card
    assert "Step 1 of 2 was not created" not in card and "nothing of the ramp" not in card
    assert buttons(bot) == ["Pause"]
    posts = [r for r in ld_writes(bot) if r["path"].endswith("/scheduled-changes")]
    assert len(posts) == 1, "step 2 is not sent after a lost answer"
    await click(bot, "Pause")
    card = card_text(bot)
    assert "is not listed now but may still appear and run" in card
    assert "The flag keeps what it serves now" not in card
    assert buttons(bot) == ["Pause"], "still offered: it may appear later"


async def test_a_step_whose_creation_cannot_be_checked_is_unknown_and_pause_finds_it(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = sandbox_approvals.create_scheduled
    calls = {"n": 0}

    def second_answer_lost(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        doc = real_create(*args, **kwargs)
        if calls["n"] == 2:
            bot.sandbox.faults = bot.sandbox.faults.model_copy(
                update={"error_every": 1, "error_status": 503, "methods": ["GET"]}
            )
            raise ApiError(502, "bad_gateway", "upstream timed out")
        return doc

    monkeypatch.setattr(sandbox_approvals, "create_scheduled", second_answer_lost)
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% every 30m")
    await click(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    assert len(bot.sandbox.scheduled) == 2, "step 2 exists; step 3 was not tried"
    card = card_text(bot)
    assert "Step 2 of 3: unknown whether it was created" in card
    assert "Step 1 exists in LaunchDarkly and runs at its time unless you press *Pause*" in card
    assert ":warning: unknown whether the scheduled change exists" in card, "the step's line says so too"
    assert buttons(bot) == ["Pause"]
    with_pause = copy.deepcopy(bot.card())
    await click(bot, "Pause")
    assert not bot.sandbox.scheduled, "the unknown step is found by its time and instructions"
    assert "deleted steps 1 and 2" in card_text(bot)
    await bot.click("Pause", message=with_pause)  # a second press from an older copy of the card
    await bot.idle()
    assert "nothing to pause" in bot.ephemeral_texts(ALICE)[-1]


async def test_a_ramp_left_half_created_by_a_stopped_bot_says_which_steps_exist(bot: Harness) -> None:
    """As a crash leaves it: claimed, step 1 confirmed and stored, the bot gone before step 2."""
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% every 30m")
    store = bot.store
    (change,) = [c for c in [await store.get_change(m) for m in await change_ids(bot)] if c is not None]
    past = NOW - timedelta(hours=1)
    claimed = await store.transition(
        change.id,
        ["proposed"],
        "applying",
        ALICE,
        detail="Apply pressed",
        lease_owner="gone",
        lease_expires_at=past,
    )
    assert claimed is not None
    alice = next(a for a in bot.sandbox.accounts if a.member.get("email") == "alice@example.com")
    doc = sandbox_approvals.create_scheduled(
        bot.sandbox,
        alice,
        "demo",
        "new-checkout",
        "test",
        {"executionDate": ms(NOW) + HALF_HOUR_MS, "instructions": ramp_step(change, 0)},
        ignore_conflicts=False,
    )
    outcome = {"ramp": {"kind": "scheduled", "steps": [{"state": "created", "id": doc["_id"]}]}}
    await store.record(change.id, ["applying"], ALICE, detail="ramp step 1", outcome_json=json.dumps(outcome))
    changes = bot.stack.runtime.changes
    changes.clock = lambda: NOW + timedelta(minutes=10)
    await changes.sweep(now=NOW + timedelta(minutes=10))
    await bot.idle()
    card = card_text(bot)
    assert "Step 2 of 3: unknown whether it was created" in card and "the bot stopped" in card
    assert "Step 1 exists in LaunchDarkly" in card and doc["_id"] not in card
    assert buttons(bot) == ["Pause"]
    await click(bot, "Pause", at=NOW + timedelta(minutes=10))
    assert not bot.sandbox.scheduled and "deleted step 1 from LaunchDarkly" in card_text(bot)


async def change_ids(bot: Harness) -> list[str]:
    return [str(b["value"]) for b in bot.card().buttons][:1]


def ramp_step(change: Any, index: int) -> list[dict[str, Any]]:
    proposal = json.loads(change.request_json)
    return list(proposal["ramp"]["steps"][index]["patch"]["instructions"])


async def test_pause_when_launchdarkly_cannot_be_read_deletes_nothing_and_says_so(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    await click(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"error_every": 1, "error_status": 503, "methods": ["GET"]}
    )
    await click(bot, "Pause")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"error_every": 0})
    assert len(bot.sandbox.scheduled) == 2
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "Could not read the ramp in LaunchDarkly" in answer and "Nothing was deleted" in answer
    assert buttons(bot) == ["Pause"], "still offered"
    await click(bot, "Pause")
    assert not bot.sandbox.scheduled


async def test_a_record_writes_only_in_the_states_named(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    (change_id,) = await change_ids(bot)
    assert await bot.store.record(change_id, ["applied"], ALICE, detail="x", outcome_json="{}") is None
    written = await bot.store.record(change_id, ["proposed"], ALICE, detail="noted", outcome_json='{"a": 1}')
    assert written is not None and written.state == "proposed" and written.outcome == {"a": 1}
    audit = await bot.store.audit_for(change_id)
    assert (audit[-1].from_state, audit[-1].to_state, audit[-1].detail) == ("proposed", "proposed", "noted")
    with pytest.raises(ValueError):
        await bot.store.record(change_id, ["proposed"], ALICE, detail="x", state="applied")


async def test_undo_of_a_ramp_points_to_pause(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    await click(bot, "Apply")
    cards = len(bot.slack.messages(RELEASES))
    await run(bot, "/flag undo")
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "is a ramp: *Pause* on its card deletes the steps not yet run" in answer
    assert len(bot.slack.messages(RELEASES)) == cards and len(bot.sandbox.scheduled) == 2


# --- lost answers, unexpected errors, a ramp down, Propose again, variation names -------------


async def click_and_wait(
    bot: Harness, which: str, *, user: str = ALICE, at: datetime = NOW, message: Any = None
) -> None:
    """Click, then wait out an apply that looks again after the settle window (several seconds)."""
    bot.stack.runtime.changes.clock = lambda: at
    assert (await bot.click(which, user=user, message=message)).status_code == 200
    await bot.idle(timeout=60)


async def until(check: Any, seconds: float = 15.0) -> None:
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")


async def test_a_step_whose_answer_is_lost_is_looked_for_after_the_settle_window(bot: Harness) -> None:
    """LaunchDarkly answers after the bot's timeout (3 s) and creates the step at 5 s: looked for
    once the settle window has passed, it is found, and the ramp goes on; never "press Apply again"."""
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={"hang": 5, "hang_every": 1, "methods": ["POST"], "apply_before_fault": False}
    )
    await click_and_wait(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"hang_every": 0})
    assert len(scheduled(bot)) == 2, "each step created once, found after its answer was lost"
    card = card_text(bot)
    assert "Ramp scheduled by <@U_ALICE>" in card and buttons(bot) == ["Pause"]
    said = card + " ".join(m.text for m in bot.thread())
    assert "Apply again" not in said and "not created" not in said and "nothing of the ramp" not in said


async def test_a_step_that_lands_after_the_settle_window_is_unknown_and_pause_deletes_it(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 2's answer is lost and LaunchDarkly creates it only 10 s later: the card says it is
    unknown (not "not created"), creates no step 3, and Pause deletes step 1 and the late step 2."""
    real = sandbox_approvals.create_scheduled
    calls = {"n": 0}

    def second_hangs(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:  # the next POST (step 2) hangs, then is handled
            bot.sandbox.faults = bot.sandbox.faults.model_copy(
                update={"hang": 10, "hang_every": 1, "methods": ["POST"], "apply_before_fault": False}
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox_approvals, "create_scheduled", second_hangs)
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% every 30m")
    await click_and_wait(bot, "Apply")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"hang_every": 0})
    card = card_text(bot)
    assert "Step 2 of 3: unknown whether it was created" in card, card
    assert "may still create it" in card and "*Pause* looks for it" in card
    assert "Step 2 of 3 was not created" not in card and "Apply again" not in card
    assert "Step 1 exists in LaunchDarkly" in card and buttons(bot) == ["Pause"]
    await until(lambda: len(bot.sandbox.scheduled) == 2)  # step 2 lands late
    assert calls["n"] == 2, "step 3 was never sent"
    await click(bot, "Pause")
    assert not bot.sandbox.scheduled, "the late step 2 is found by its time and instructions"
    assert "deleted steps 1 and 2 from LaunchDarkly" in card_text(bot)


async def test_in_an_approval_environment_a_lost_answer_is_looked_for_not_nothing_created(
    bot: Harness,
) -> None:
    await run(bot, "/flag ramp new-checkout production 25% 100% every 1h")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(
        update={
            "hang": 5,
            "hang_every": 1,
            "methods": ["POST"],
            "paths": ["/api/v2/projects/demo/flags/new-checkout/environments/production/approval-requests"],
            "apply_before_fault": False,
        }
    )
    await click_and_wait(bot, "Request approval")
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update={"hang_every": 0, "paths": []})
    assert len(bot.sandbox.approvals) == 2, "each request created once"
    said = card_text(bot) + " ".join(m.text for m in bot.thread())
    assert "Could not request approval" not in said and "Nothing was created" not in said
    assert "Approval requested by <@U_ALICE> for each of the 2 steps" in said
    assert buttons(bot) == ["Pause"]


async def test_an_unexpected_answer_says_which_steps_exist_and_never_offers_send_again(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 2 is created but its answer cannot be read (not LaunchDarkly's error shape): the ramp's
    own path says steps 1 and 2 exist (found by time and instructions) and offers Pause."""
    real = sandbox_approvals.create_scheduled
    calls = {"n": 0}

    def weird_second(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        doc = real(*args, **kwargs)
        return {"weird": True} if calls["n"] == 2 else doc

    monkeypatch.setattr(sandbox_approvals, "create_scheduled", weird_second)
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% every 30m")
    await click_and_wait(bot, "Apply")
    assert len(bot.sandbox.scheduled) == 2 and calls["n"] == 2, "step 3 not sent"
    card = card_text(bot)
    assert "Something went wrong on the bot's side while creating the ramp" in card, card
    assert "Steps 1 and 2 exist in LaunchDarkly" in card and "Step 3 of 3 was not created" in card
    assert "Send again" not in card and "Not applied" not in card
    assert buttons(bot) == ["Pause"]
    await click(bot, "Pause")
    assert not bot.sandbox.scheduled and "deleted steps 1 and 2" in card_text(bot)


async def test_a_ramp_that_would_take_the_variation_away_first_is_refused(bot: Harness) -> None:
    serve(bot, "new-checkout", "test", 0)  # the demo as it is: true to everyone in test
    await run(bot, "/flag ramp new-checkout test 5% 25% 50% 100% every 30m")
    assert not bot.slack.messages(RELEASES), "no card"
    (answer,) = bot.ephemeral_texts(ALICE)
    assert "`new-checkout` already serves true to 100% in `test`" in answer, answer
    assert "a ramp from 5% would take it away from 95%" in answer
    assert "first serve false: `/flag serve new-checkout test false`, or ramp the other variation" in answer
    assert not ld_writes(bot)
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% false every 30m")  # the other variation
    assert "3 steps" in card_text(bot) and buttons(bot) == ["Apply", "Cancel"]


async def test_an_expired_ramp_card_can_be_proposed_again(bot: Harness) -> None:
    await run(bot, "/flag ramp new-checkout test 5% 100% every 30m")
    old = bot.card()
    later = NOW + timedelta(days=3)
    bot.stack.runtime.changes.clock = lambda: later
    await bot.stack.runtime.changes.sweep(now=later)
    await bot.idle()
    assert "Propose again" in card_text(bot) and buttons(bot) == ["Propose again"]
    await click(bot, "Propose again", at=later)
    assert bot.card().ts != old.ts and buttons(bot) == ["Apply", "Cancel"]
    card = card_text(bot)
    assert "Ramp in test: 2 steps" in card
    seconds = int((later + timedelta(minutes=30)).timestamp())
    assert f"1. <!date^{seconds}^" in card, "the steps count from the new card"


@pytest.mark.parametrize("name", ["Enabled", "enabled"])
async def test_a_boolean_ramp_may_name_its_variation(bot: Harness, name: str) -> None:
    await run(bot, f"/flag ramp new-checkout production 5% 100% every 30m {name}")  # serves false now
    assert "5% Enabled (true)" in card_text(bot), bot.ephemeral_texts(ALICE)
    await run(bot, "/flag ramp new-checkout production 5% 100% every 30m Enabld")
    answer = bot.ephemeral_texts(ALICE)[-1]
    assert "`new-checkout` has no variation `Enabld`" in answer and "`Enabled`" in answer, answer


async def test_a_typo_in_a_ramp_offers_the_corrected_ramp_and_the_click_proposes_it(bot: Harness) -> None:
    await run(bot, "/flag ramp new-chekout test 5% 100% every 30m")
    answer = last_answer(bot)
    assert "`new-checkout`" in answer.text
    (button,) = answer_buttons(answer)
    assert button["value"] == "ramp new-checkout test 5% 100% every 30m"
    assert button["text"]["text"] == "Propose /flag ramp new-checkout test 5% 100% every 30m"
    await click_answer(bot, answer)
    assert buttons(bot) == ["Apply", "Cancel"] and "Ramp in test: 2 steps" in card_text(bot)


async def test_an_unexpected_answer_to_an_approval_request_says_which_exist(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_approvals.create_approval
    calls = {"n": 0}

    def weird_second(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        doc = real(*args, **kwargs)
        return {"weird": True} if calls["n"] == 2 else doc

    monkeypatch.setattr(sandbox_approvals, "create_approval", weird_second)
    await run(bot, "/flag ramp new-checkout production 25% 50% 100% every 1h")
    await click_and_wait(bot, "Request approval")
    assert len(bot.sandbox.approvals) == 2 and calls["n"] == 2, "step 3 not requested"
    card = card_text(bot)
    assert "Something went wrong on the bot's side while creating the ramp" in card, card
    assert "Steps 1 and 2 exist in LaunchDarkly" in card and "Step 3 of 3 was not created" in card
    assert "Nothing was created" not in card and buttons(bot) == ["Pause"]
    await click(bot, "Pause")
    assert not bot.sandbox.approvals and "deleted steps 1 and 2" in card_text(bot)


async def test_send_again_never_runs_a_ramp_again(bot: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an unexpected error, even a *Send again* (from an older card, or forged) creates nothing."""
    real = sandbox_approvals.create_scheduled
    calls = {"n": 0}

    def weird_second(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls["n"] += 1
        doc = real(*args, **kwargs)
        return {"weird": True} if calls["n"] == 2 else doc

    monkeypatch.setattr(sandbox_approvals, "create_scheduled", weird_second)
    await run(bot, "/flag ramp new-checkout test 5% 25% 100% every 30m")
    await click_and_wait(bot, "Apply")
    later = NOW + timedelta(minutes=1)  # any settle window has passed; the sweep decides what waits
    bot.stack.runtime.changes.clock = lambda: later
    await bot.stack.runtime.changes.sweep(now=later)
    await bot.idle(timeout=30)
    assert "Send again" not in buttons(bot)
    forged = copy.deepcopy(bot.card())
    (actions,) = [b for b in forged.blocks if str(b.get("block_id", "")).startswith("change:")]
    change_id = str(actions["block_id"]).removeprefix("change:")
    actions["elements"].append(
        {
            "type": "button",
            "action_id": "change_send_again",
            "value": change_id,
            "text": {"type": "plain_text", "text": "Send again"},
        }
    )
    await click_and_wait(bot, "Send again", message=forged, at=later)
    assert len(bot.sandbox.scheduled) == 2 and calls["n"] == 2, "nothing sent again"
    assert "A ramp is never sent again" in bot.ephemeral_texts(ALICE)[-1]
