"""Approval requests, scheduled changes and conflicts: the client against the sandbox."""

from __future__ import annotations

import httpx
import pytest

from bot.launchdarkly.client import LaunchDarklyClient, approval_filter, flag_resource_id
from bot.launchdarkly.errors import ApprovalRequired, ConflictError, InvalidRequest, NotFound
from bot.launchdarkly.sandbox.approvals import run_due
from commands.instructions import (
    AddUserTargets,
    SemanticPatch,
    TurnFlagOff,
    TurnFlagOn,
    UpdateFallthroughVariationOrRollout,
)
from tests.launchdarkly.conftest import ALICE_ID, BOB, BOB_ID, Sandbox

ENABLED = "903052d7-527c-52b5-b27a-8436463aa644"  # new-checkout's "Enabled" variation


def _production(sandbox: Sandbox) -> dict[str, object]:
    env: dict[str, object] = sandbox.state.projects["demo"].flags["new-checkout"]["environments"][
        "production"
    ]
    return env


async def _request_on(ld: LaunchDarklyClient, **extra: object) -> str:
    request = await ld.create_approval_request(
        "demo",
        "new-checkout",
        "production",
        description="Turn on new checkout",
        instructions=[TurnFlagOn()],
        comment="asked in #releases",
        notify_member_ids=[BOB_ID],
        **extra,  # type: ignore[arg-type]
    )
    return request.id


async def test_lifecycle_pending_approved_applied(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    request_id = await _request_on(ld)
    request = await ld.get_approval_request("demo", "new-checkout", "production", request_id)
    assert (request.review_status, request.status) == ("pending", "pending")
    assert request.requestor_id == ALICE_ID and request.notify_member_ids == [BOB_ID]
    assert request.instructions == [{"kind": "turnFlagOn"}]

    with pytest.raises(InvalidRequest, match="must be approved"):
        await ld.apply_approval_request("demo", "new-checkout", "production", request_id)
    with pytest.raises(InvalidRequest, match="own approval request"):
        await ld.review_approval_request("demo", "new-checkout", "production", request_id, "approve")

    async with sandbox.client(BOB) as bob:
        commented = await bob.review_approval_request(
            "demo", "new-checkout", "production", request_id, "comment", "looks fine"
        )
        assert commented.review_status == "pending"
        approved = await bob.review_approval_request(
            "demo", "new-checkout", "production", request_id, "approve"
        )
    assert approved.review_status == "approved"
    assert [(r.kind, r.member_id) for r in approved.all_reviews] == [("comment", BOB_ID), ("approve", BOB_ID)]

    applied = await ld.apply_approval_request("demo", "new-checkout", "production", request_id, "go")
    assert applied.status == "completed" and applied.applied_by_member_id == ALICE_ID
    assert _production(sandbox)["on"] is True
    assert [r.id for r in await ld.list_approval_requests("demo", "new-checkout", "production")] == [
        request_id
    ]
    with pytest.raises(InvalidRequest, match="already completed"):
        await ld.apply_approval_request("demo", "new-checkout", "production", request_id)


async def test_declined_requests_do_not_apply(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    request_id = await _request_on(ld)
    async with sandbox.client(BOB) as bob:
        declined = await bob.review_approval_request(
            "demo", "new-checkout", "production", request_id, "decline"
        )
    assert declined.review_status == "declined"
    with pytest.raises(InvalidRequest):
        await ld.apply_approval_request("demo", "new-checkout", "production", request_id)
    assert _production(sandbox)["on"] is False


async def test_own_review_allowed_where_the_environment_says_so(
    sandbox: Sandbox, ld: LaunchDarklyClient
) -> None:
    sandbox.state.projects["demo"].environments["production"]["approvalSettings"]["canReviewOwnRequest"] = (
        True
    )
    request_id = await _request_on(ld)
    approved = await ld.review_approval_request("demo", "new-checkout", "production", request_id, "approve")
    assert approved.review_status == "approved"


async def test_apply_rechecks_against_the_current_flag(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    request = await ld.create_approval_request(
        "demo",
        "new-checkout",
        "production",
        description="target carol",
        instructions=[AddUserTargets(variationId=ENABLED, values=["carol"])],
    )
    async with sandbox.client(BOB) as bob:
        await bob.review_approval_request("demo", "new-checkout", "production", request.id, "approve")
    # Meanwhile the variation disappears from the flag.
    flag = sandbox.state.projects["demo"].flags["new-checkout"]
    flag["variations"][0]["_id"] = "replaced"
    with pytest.raises(InvalidRequest):
        await ld.apply_approval_request("demo", "new-checkout", "production", request.id)
    failed = await ld.get_approval_request("demo", "new-checkout", "production", request.id)
    assert failed.status == "failed"


async def test_delete_and_not_found(ld: LaunchDarklyClient) -> None:
    request_id = await _request_on(ld)
    await ld.delete_approval_request("demo", "new-checkout", "production", request_id)
    with pytest.raises(NotFound):
        await ld.get_approval_request("demo", "new-checkout", "production", request_id)
    with pytest.raises(NotFound):
        await ld.get_approval_request_by_id(request_id)


async def test_generic_list_with_filters(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    first = await _request_on(ld)
    second = await _request_on(ld)
    async with sandbox.client(BOB) as bob:
        await bob.review_approval_request("demo", "new-checkout", "production", second, "approve")
    pending = await ld.list_all_approval_requests(filter=approval_filter(review_status=["pending"]))
    assert [r.id for r in pending.items] == [first]
    assert pending.items[0].resource_id == flag_resource_id("demo", "production", "new-checkout")
    mine = await ld.list_all_approval_requests(
        filter=approval_filter(
            review_status=["pending", "approved"],
            notify_member_ids=[BOB_ID],
            requestor_id=ALICE_ID,
            project_key="demo",
        ),
        expand=["flag", "environments"],
    )
    assert {r.id for r in mine.items} == {first, second}
    assert (
        mine.items[0].model_extra is not None and mine.items[0].model_extra["flag"]["key"] == "new-checkout"
    )
    by_id = await ld.get_approval_request_by_id(second)
    assert by_id.review_status == "approved"
    assert sandbox.state.requests[-1]["path"] == f"/api/v2/approval-requests/{second}"
    assert approval_filter() is None
    assert approval_filter(review_status=["pending"], requestor_id="m1") == (
        'reviewStatus anyOf ["pending"], requestorId equals m1'
    )


async def test_a_change_touching_a_pending_requests_part_conflicts(
    sandbox: Sandbox, ld: LaunchDarklyClient
) -> None:
    await ld.create_approval_request(
        "demo",
        "new-checkout",
        "production",
        description="fallthrough",
        instructions=[UpdateFallthroughVariationOrRollout(variationId=ENABLED)],
    )
    sandbox.state.projects["demo"].environments["production"]["approvalSettings"]["required"] = False
    same_part = SemanticPatch(
        environmentKey="production", instructions=[UpdateFallthroughVariationOrRollout(variationId=ENABLED)]
    )
    with pytest.raises(ConflictError) as caught:
        await ld.patch_flag_semantic("demo", "new-checkout", same_part)
    assert caught.value.status == 400 and caught.value.conflicts
    assert "ignoreConflicts" in caught.value.message
    # Another part of the same environment, or the same part elsewhere, does not conflict.
    await ld.patch_flag_semantic(
        "demo", "new-checkout", SemanticPatch(environmentKey="production", instructions=[TurnFlagOn()])
    )
    await ld.patch_flag_semantic(
        "demo",
        "new-checkout",
        SemanticPatch(
            environmentKey="test", instructions=[UpdateFallthroughVariationOrRollout(variationId=ENABLED)]
        ),
    )
    flag = await ld.patch_flag_semantic("demo", "new-checkout", same_part, ignore_conflicts=True)
    assert flag.environments["production"].fallthrough is not None
    assert flag.environments["production"].fallthrough.variation == 0


async def test_scheduled_changes(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    change = await ld.create_scheduled_change(
        "demo",
        "new-checkout",
        "test",
        execution_date=2_000_000_000_000,
        instructions=[TurnFlagOff()],
        comment="night switch",
    )
    assert change.maintainer_id == ALICE_ID and change.instructions == [{"kind": "turnFlagOff"}]
    assert [c.id for c in await ld.list_scheduled_changes("demo", "new-checkout", "test")] == [change.id]
    assert (await ld.get_scheduled_change("demo", "new-checkout", "test", change.id)).execution_date == (
        2_000_000_000_000
    )
    with pytest.raises(ConflictError):
        await ld.patch_flag_semantic(
            "demo", "new-checkout", SemanticPatch(environmentKey="test", instructions=[TurnFlagOn()])
        )
    with pytest.raises(ConflictError):
        await ld.create_scheduled_change(
            "demo", "new-checkout", "test", execution_date=2_000_000_100_000, instructions=[TurnFlagOn()]
        )
    await ld.create_scheduled_change(
        "demo",
        "new-checkout",
        "test",
        execution_date=2_000_000_100_000,
        instructions=[TurnFlagOn()],
        ignore_conflicts=True,
    )
    async with httpx.AsyncClient(base_url=sandbox.url) as control:
        early = await control.post("/_sandbox/clock", json={"now": 1_999_999_999_999})
        assert early.json() == {"ran": []}
        ran = (await control.post("/_sandbox/clock", json={"now": 2_000_000_000_000})).json()["ran"]
    assert ran == [{"_id": change.id, "status": "completed"}]
    assert sandbox.state.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] is False
    assert sandbox.state.audit[-1]["memberId"] == ALICE_ID
    assert sandbox.state.audit[-1]["comment"] == "night switch"
    (remaining,) = await ld.list_scheduled_changes("demo", "new-checkout", "test")
    await ld.delete_scheduled_change("demo", "new-checkout", "test", remaining.id)
    assert await ld.list_scheduled_changes("demo", "new-checkout", "test") == []


async def test_scheduling_in_an_approval_environment_needs_a_request(ld: LaunchDarklyClient) -> None:
    with pytest.raises(ApprovalRequired):
        await ld.create_scheduled_change(
            "demo",
            "new-checkout",
            "production",
            execution_date=2_000_000_000_000,
            instructions=[TurnFlagOn()],
        )


async def test_an_approved_request_with_an_execution_date_is_scheduled(
    sandbox: Sandbox, ld: LaunchDarklyClient
) -> None:
    request_id = await _request_on(ld, execution_date=2_000_000_000_000)
    async with sandbox.client(BOB) as bob:
        await bob.review_approval_request("demo", "new-checkout", "production", request_id, "approve")
    scheduled = await ld.apply_approval_request("demo", "new-checkout", "production", request_id)
    assert scheduled.status == "scheduled" and _production(sandbox)["on"] is False
    sandbox.state.clock = lambda: 2_000_000_000_000
    run_due(sandbox.state, 2_000_000_000_000)
    done = await ld.get_approval_request("demo", "new-checkout", "production", request_id)
    assert done.status == "completed" and _production(sandbox)["on"] is True
