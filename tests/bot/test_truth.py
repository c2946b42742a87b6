"""Truth about outcomes: whether a change landed is decided from LaunchDarkly, never guessed.

Each test reproduces an attack through signed HTTP, the fake Slack and the sandbox with its
fault switches; the ones about instances and restarts run on Postgres too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.launchdarkly.sandbox import SandboxState
from bot.lifecycle.models import APPLYING, Proposal
from bot.persistence.db import changes as changes_table
from bot.persistence.store import Change
from commands.instructions import AddTargets, SemanticPatch
from tests.bot.harness import ALICE, Harness, buttons, card_text, click, run

StartBot = Callable[..., Awaitable[Harness]]
TRUE = "903052d7-527c-52b5-b27a-8436463aa644"  # new-checkout's `true`
MANY = [f"user-{n}" for n in range(8)]


def targeted(bot: Harness) -> set[str]:
    env = bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]
    return {v for t in env.get("targets") or [] for v in t.get("values") or []}


def fault(bot: Harness, **update: Any) -> None:
    bot.sandbox.faults = bot.sandbox.faults.model_copy(update=update)


async def someone_else_targets(bot: Harness, user: str) -> None:
    """Bob, in LaunchDarkly's UI or another tool: a write with no flagops change id."""
    patch = SemanticPatch(
        environmentKey="test",
        instructions=[AddTargets(variationId=TRUE, values=[user], contextKind="user")],
        comment="from the LaunchDarkly UI",
    )
    await bot.stack.runtime.ld.patch_flag_semantic("demo", "new-checkout", patch, token="sandbox-bob")


async def only_change(bot: Harness) -> Change:
    rows = await bot.stack.runtime.store._select(select(changes_table).order_by(changes_table.c.created_at))
    return rows[-1]


async def test_a_lookalike_change_by_someone_else_is_not_taken_for_ours(start_bot: StartBot) -> None:
    # The summaries of "add lost-user" and "add someone-else" to 8+ targets truncate alike; the
    # decision reads LaunchDarkly's audit log for this change's id instead.
    bot = await start_bot(ld_timeout=0.5)
    for user in MANY:
        await someone_else_targets(bot, user)
    await run(bot, "/flag target new-checkout test user:lost-user -> true")
    fault(bot, error_every=1, error_status=500, methods=["PATCH"])
    await click(bot, "Apply")
    fault(bot, error_every=0)
    assert "lost-user" not in targeted(bot)
    assert "Not applied" in card_text(bot) and buttons(bot) == ["Send again", "Cancel"]
    await someone_else_targets(bot, "someone-else")
    patches = len(bot.ld_patches())
    await click(bot, "Send again")
    assert "earlier attempt landed" not in card_text(bot) and "Applied" not in card_text(bot)
    assert "changed since this preview" in card_text(bot)  # a new preview follows in the thread
    assert len(bot.ld_patches()) == patches, "nothing sent against a flag nobody has seen"
    assert "lost-user" not in targeted(bot)
    await click(bot, "Apply")  # the fresh preview, under the old card
    assert "lost-user" in targeted(bot) and "someone-else" in targeted(bot)


async def test_without_the_audit_log_documents_decide_in_full(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    for user in MANY:
        await someone_else_targets(bot, user)
    await run(bot, "/flag target new-checkout test user:lost-user -> true")
    fault(bot, error_every=1, error_status=500, methods=["PATCH"])
    response = await bot.click("Apply")
    assert response.status_code == 200
    await asyncio.sleep(0.2)
    fault(bot, error_every=1, error_status=503, methods=["GET"], paths=["/api/v2/auditlog"])
    await someone_else_targets(bot, "someone-else")
    await bot.idle()
    text = card_text(bot)
    assert "Applied" not in text
    assert "audit log could not be read" in text and "does not show the change" in text
    assert buttons(bot) == ["Send again", "Cancel"]


async def test_a_write_that_landed_despite_a_500_is_applied_not_resent(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.5)
    await run(bot, "/flag target new-checkout test user:landed-user -> true")
    # LaunchDarkly applies the change, then the connection drops before the answer.
    fault(bot, drop_every=1, methods=["PATCH"], apply_before_fault=True)
    await click(bot, "Apply")
    assert "landed-user" in targeted(bot)
    assert "Applied" in card_text(bot) and "audit log shows this change" in card_text(bot)
    assert len(bot.ld_patches()) == 1


@pytest.mark.parametrize(("hang", "lands"), [(1.2, True), (0.0, False)], ids=["lands-late", "never-lands"])
async def test_no_duplicate_patch_in_any_late_or_lost_write(
    start_bot: StartBot, hang: float, lands: bool
) -> None:
    bot = await start_bot(ld_timeout=0.3, flagops_settle_window=1.6)
    await run(bot, "/flag target new-checkout test user:late-user -> true")
    if lands:
        fault(bot, hang=hang, hang_every=1, methods=["PATCH"], apply_before_fault=False)
    else:
        fault(bot, error_every=1, error_status=502, methods=["PATCH"])
    await click(bot, "Apply")
    fault(bot, hang=0.0, hang_every=0, error_every=0)
    writes = [r for r in bot.ld_patches() if "late-user" in str(r["body"])]
    if lands:
        assert "Applied" in card_text(bot) and len(writes) == 1
        return
    assert "Not applied" in card_text(bot)
    await click(bot, "Send again")
    writes = [r for r in bot.ld_patches() if "late-user" in str(r["body"])]
    assert len(writes) == 2 and "Applied" in card_text(bot) and "late-user" in targeted(bot)
    assert len([r for r in bot.ld_patches() if "late-user" in str(r["body"])]) == 2


async def test_a_stopping_process_finishes_the_apply_in_flight(start_bot: StartBot) -> None:
    # A deploy's SIGTERM right after the click: uvicorn's shutdown closes the runtime, which
    # drains the clicks in flight before it closes the clients.
    bot = await start_bot()
    await run(bot, "/flag off new-checkout test")
    fault(bot, latency=0.5)
    assert (await bot.click("Apply")).status_code == 200
    await asyncio.sleep(0.05)
    await bot.stack.runtime.close()
    env = bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]
    assert env["on"] is False and len(bot.ld_patches()) == 1
    change = await only_change(bot)
    assert change is not None and change.state == "applied"


@pytest.mark.parametrize("sent", [True, False], ids=["sent-then-died", "died-before-sending"])
async def test_another_instance_settles_a_dead_owners_apply_only_after_its_lease(
    start_bot: StartBot, empty_postgres_url: str, sent: bool
) -> None:
    # A database of its own: the sweep looks at every change in it.
    postgres_url = empty_postgres_url
    first = await start_bot(database_url=postgres_url, ld_timeout=0.5)
    second = await start_bot(
        database_url=postgres_url, sandbox=first.sandbox, slack=first.slack, ld_timeout=0.5
    )
    await run(first, "/flag target new-checkout test user:orphan -> true")
    found = await first.stack.runtime.store.get_change(first.card().buttons[0]["value"])
    assert found is not None
    change = found
    # The first instance claims the change and dies: its lease stays, its write may be out.
    lease = first.stack.runtime.changes._lease()
    claimed = await first.stack.runtime.store.transition(
        change.id, ["proposed"], APPLYING, ALICE, detail="Apply pressed", **lease
    )
    assert claimed is not None and claimed.lease_expires_at is not None
    if sent:
        proposal = Proposal.model_validate_json(change.request_json)
        comment = f"flagops change {change.id} via Slack by @alice"
        patch = proposal.semantic_patch().model_copy(update={"comment": comment})
        await first.stack.runtime.ld.patch_flag_semantic("demo", "new-checkout", patch)
    changes = second.stack.runtime.changes
    await changes.sweep(now=changes.clock() + timedelta(minutes=3))
    await second.idle()
    assert (await second.stack.runtime.store.get_change(change.id)).state == APPLYING, "the lease holds"
    late = claimed.lease_expires_at + timedelta(seconds=changes.settings.settle_seconds + 1)
    await changes.sweep(now=late)
    await second.idle()
    settled = await second.stack.runtime.store.get_change(change.id)
    assert settled is not None
    text = card_text(second)
    if sent:
        assert settled.state == "applied" and "audit log shows this change" in text
    else:
        assert settled.state == "outcome_unknown" and settled.settle_at is None
        assert "Not applied" in text and buttons(second) == ["Send again", "Cancel"]
    assert len([r for r in first.ld_patches() if "orphan" in str(r["body"])]) == (1 if sent else 0)


async def test_a_dry_run_that_times_out_is_not_an_unknown_outcome(start_bot: StartBot) -> None:
    bot = await start_bot(ld_timeout=0.3)
    fault(bot, hang=1.0, hang_every=1, methods=["PATCH"])
    await run(bot, "/flag off new-checkout test")
    said = " ".join(bot.ephemeral_texts()) + " ".join(m.text for m in bot.slack.all_messages())
    assert "applied the change" not in said and "may or may not" not in said
    fault(bot, hang=0.0, hang_every=0)


async def test_dry_runs_send_no_null_comment(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    for request in bot.ld_patches(dry_runs=True):
        assert "comment" not in request["body"] or isinstance(request["body"]["comment"], str)


async def test_the_audit_log_is_served_as_documented(bot: Harness) -> None:
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    ld = bot.stack.runtime.ld
    page = await ld.list_audit_log("proj/demo:env/test:flag/new-checkout")
    (entry,) = page.items
    assert entry.comment and "flagops change" in entry.comment
    assert entry.previous_version is None and entry.current_version is None, "lists carry no versions"
    full = await ld.get_audit_entry(entry.id)
    assert full.previous_version and full.current_version
    assert full.current_version["environments"]["test"]["on"] is False
    assert not (await ld.list_audit_log("proj/demo:env/production:flag/new-checkout")).items
    assert (await ld.list_audit_log("proj/demo:env/*:flag/new-checkout")).items


def test_sandbox_state_has_an_empty_audit_log_after_reset() -> None:
    state = SandboxState.demo()
    state.record_flag_change(
        project="demo",
        flag_key="x",
        before=None,
        after={"name": "x"},
        member=None,
        comment=None,
        environments=[],
    )
    state.reset()
    assert state.ld_audit == []


async def test_two_instances_do_not_supersede_each_others_cards(start_bot: StartBot) -> None:
    # Each instance keeps a short flag cache; a card is previewed against the flag as
    # LaunchDarkly holds it, so a write made through the other instance does not make it stale.
    first = await start_bot()
    second = await start_bot(sandbox=first.sandbox, slack=first.slack)
    await run(first, "/flag show new-checkout test")  # fills the first instance's cache
    await run(second, "/flag off new-checkout test")
    await click(second, "Apply")
    await run(first, "/flag on new-checkout test")
    await click(first, "Apply")
    assert "Applied" in card_text(first) and "changed since this preview" not in card_text(first)
    env = first.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]
    assert env["on"] is True


async def test_an_accepted_write_with_a_sparse_answer_is_applied(bot: Harness) -> None:
    # LaunchDarkly applied the change, but its answer lacks "name": the card still says Applied
    # (the flag is read again for the "after"), never "Applying…" or "Nothing was changed".
    bot.sandbox.switches = bot.sandbox.switches.model_copy(
        update={"patch_answer_omits": ["name", "variations"]}
    )
    await run(bot, "/flag off new-checkout test")
    await click(bot, "Apply")
    assert "Applied" in card_text(bot) and "answer could not be read" in card_text(bot)
    assert bot.sandbox.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] is False
    assert len(bot.ld_patches()) == 1
