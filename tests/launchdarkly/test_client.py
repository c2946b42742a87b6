"""The client against the sandbox on a real loopback socket: every call, and what it sends."""

from __future__ import annotations

import httpx
import pytest

from bot.launchdarkly.client import (
    API_VERSION,
    COMMERCIAL_URL,
    EU_URL,
    FEDERAL_URL,
    LaunchDarklyClient,
)
from bot.launchdarkly.errors import (
    ApprovalRequired,
    Forbidden,
    InvalidRequest,
    NotFound,
    OptimisticLockError,
    Unauthorized,
)
from commands.instructions import (
    AddTags,
    FlagJsonPatch,
    JsonPatch,
    MergePatch,
    PatchOperation,
    SemanticPatch,
    TurnFlagOff,
    TurnFlagOn,
    UpdateRuleDescription,
)
from tests.launchdarkly.conftest import ALICE, ALICE_ID, BOB_ID, CAROL, Sandbox

OFF_IN_TEST = SemanticPatch(environmentKey="test", instructions=[TurnFlagOff()], comment="from Slack")


async def test_get_flag_round_trips_the_document(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    flag = await ld.get_flag("demo", "pricing-page")
    assert flag.document() == sandbox.state.projects["demo"].flags["pricing-page"]
    assert [r.description for r in flag.environments["test"].rules] == [
        "Beta testers",
        "EU customers",
        "Internal staff",
    ]
    narrowed = await ld.get_flag("demo", "pricing-page", env=["production"])
    assert list(narrowed.environments) == ["production"]


async def test_headers_sent(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    await ld.get_flag("demo", "new-checkout")
    await ld.list_flag_links("demo", "new-checkout")
    plain, beta = sandbox.state.requests
    assert plain["ldApiVersion"] == API_VERSION == "20240415"
    assert beta["ldApiVersion"] == "beta"
    assert str(plain["userAgent"]).startswith("flagops/")


def test_base_urls_of_each_region() -> None:
    assert (COMMERCIAL_URL, FEDERAL_URL, EU_URL) == (
        "https://app.launchdarkly.com",
        "https://app.launchdarkly.us",
        "https://app.eu.launchdarkly.com",
    )
    assert LaunchDarklyClient(EU_URL + "/", "t").base_url == EU_URL


async def test_list_flags_filters_and_pages(ld: LaunchDarklyClient) -> None:
    page = await ld.list_flags("demo", limit=2)
    assert [f.key for f in page.items] == ["new-checkout", "banner-color"]
    assert page.total_count == 5 and page.has_next
    assert all(not f.environments for f in page.items)  # only returned when filtered by env
    assert [f.key for f in (await ld.list_flags("demo", query="BANNER")).items] == [
        "banner-color",
        "holiday-banner",
    ]
    assert [f.key for f in (await ld.list_flags("demo", tag="checkout")).items] == [
        "new-checkout",
        "express-shipping",
    ]
    with_env = await ld.list_flags("demo", env="test", summary=False, query="pricing")
    assert len(with_env.items[0].environments["test"].rules) == 3
    everything = await ld.all_flags("demo", page_size=2)
    assert len(everything) == 5
    assert len(await ld.all_flags("demo", page_size=2, max_items=3)) == 3


async def test_list_flags_by_state(ld: LaunchDarklyClient) -> None:
    await ld.patch_flag_merge("demo", "holiday-banner", MergePatch({"archived": True}))
    assert "holiday-banner" not in [f.key for f in (await ld.list_flags("demo")).items]
    assert [f.key for f in (await ld.list_flags("demo", state="archived")).items] == ["holiday-banner"]


async def test_flag_statuses(ld: LaunchDarklyClient) -> None:
    statuses = {s.flag_key: s.name for s in await ld.flag_statuses("demo", "test")}
    assert statuses["new-checkout"] == "active"
    assert statuses["express-shipping"] == "new"
    assert statuses["holiday-banner"] == "launched"


async def test_environments_carry_approval_settings(ld: LaunchDarklyClient) -> None:
    page = await ld.list_environments("demo", limit=1)
    assert [e.key for e in page.items] == ["test"] and page.total_count == 2
    envs = {e.key: e for e in await ld.all_environments("demo", page_size=1)}
    assert not envs["test"].approval_required_for([])
    production = envs["production"].approval_settings
    assert production is not None and production.required and not production.can_review_own_request
    assert envs["production"].approval_required_for(["checkout"])


async def test_semantic_patch_applies_and_records_who(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    flag = await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert flag.environments["test"].on is False
    assert flag.version == 2 and flag.environments["test"].version == 2
    (patch,) = sandbox.patches()
    assert "domain-model=launchdarkly.semanticpatch" in str(patch["contentType"])
    assert patch["body"] == {
        "environmentKey": "test",
        "comment": "from Slack",
        "instructions": [{"kind": "turnFlagOff"}],
    }
    (entry,) = sandbox.state.audit
    assert entry["memberId"] == ALICE_ID and entry["comment"] == "from Slack"


async def test_semantic_patch_as_a_linked_user(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST, token="sandbox-bob")
    assert sandbox.state.audit[-1]["memberId"] == BOB_ID


async def test_engine_refusal_is_an_invalid_request(ld: LaunchDarklyClient) -> None:
    patch = SemanticPatch(
        environmentKey="test", instructions=[UpdateRuleDescription(ruleId="nope", description="x")]
    )
    with pytest.raises(InvalidRequest) as caught:
        await ld.patch_flag_semantic("demo", "new-checkout", patch)
    assert caught.value.code == "invalid_request" and "updateRuleDescription" in caught.value.message
    assert caught.value.id


async def test_dry_run_stores_nothing(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    preview = await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST, dry_run=True)
    assert preview.environments["test"].on is False
    assert (await ld.get_flag("demo", "new-checkout")).environments["test"].on is True
    assert sandbox.patches()[0]["query"] == {"dryRun": "true"}
    assert sandbox.state.audit == []


async def test_dry_run_in_an_approval_environment_both_ways(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    on_in_production = SemanticPatch(environmentKey="production", instructions=[TurnFlagOn()])
    preview = await ld.patch_flag_semantic("demo", "new-checkout", on_in_production, dry_run=True)
    assert preview.environments["production"].on is True
    sandbox.state.switches.dry_run_in_approval_env = "405"
    with pytest.raises(ApprovalRequired):
        await ld.patch_flag_semantic("demo", "new-checkout", on_in_production, dry_run=True)


async def test_approval_required_message_both_ways(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    on_in_production = SemanticPatch(environmentKey="production", instructions=[TurnFlagOn()])
    with pytest.raises(ApprovalRequired) as caught:
        await ld.patch_flag_semantic("demo", "new-checkout", on_in_production)
    assert caught.value.status == 405 and caught.value.code == "method_not_allowed"
    assert "action 'updateOn' not allowed" in caught.value.message
    sandbox.state.switches.approval_405_message = "generic"
    with pytest.raises(ApprovalRequired) as caught:
        await ld.patch_flag_semantic("demo", "new-checkout", on_in_production)
    assert "updateOn" not in caught.value.message
    # flag-level instructions need no approval, even with an approval environment named
    tags = SemanticPatch(environmentKey="production", instructions=[AddTags(values=["x"])])
    assert "x" in (await ld.patch_flag_semantic("demo", "new-checkout", tags)).tags


async def test_json_patch(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    patch = FlagJsonPatch(
        patch=[
            PatchOperation(op="test", path="/_version", value=1),
            PatchOperation(op="replace", path="/description", value="New description"),
            PatchOperation(op="add", path="/environments/test/targets/0/values/-", value="carol"),
        ],
        comment="json",
    )
    flag = await ld.patch_flag_json("demo", "new-checkout", patch)
    assert flag.description == "New description" and flag.version == 2
    assert flag.environments["test"].targets[0].values == ["alice", "bob", "carol"]
    assert flag.environments["test"].version == 2 and flag.environments["production"].version == 1
    with pytest.raises(OptimisticLockError):  # _version is 2 now
        await ld.patch_flag_json("demo", "new-checkout", patch)
    with pytest.raises(ApprovalRequired):
        await ld.patch_flag_json(
            "demo",
            "new-checkout",
            FlagJsonPatch(
                patch=[PatchOperation(op="replace", path="/environments/production/on", value=True)]
            ),
        )
    with pytest.raises(InvalidRequest):
        await ld.patch_flag_json(
            "demo", "new-checkout", FlagJsonPatch(patch=[PatchOperation(op="remove", path="/nothing/here")])
        )


async def test_merge_patch(ld: LaunchDarklyClient) -> None:
    flag = await ld.patch_flag_merge("demo", "banner-color", MergePatch({"description": "Merged"}))
    assert flag.description == "Merged" and flag.version == 2
    with pytest.raises(ApprovalRequired):
        await ld.patch_flag_merge(
            "demo", "banner-color", MergePatch({"environments": {"production": {"on": False}}})
        )


async def test_auth(sandbox: Sandbox) -> None:
    async with sandbox.client("not-a-token") as stranger, sandbox.client(CAROL) as reader:
        with pytest.raises(Unauthorized) as caught:
            await stranger.get_flag("demo", "new-checkout")
        assert caught.value.status == 401
        assert (await reader.get_flag("demo", "new-checkout")).key == "new-checkout"
        with pytest.raises(Forbidden):
            await reader.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert sandbox.state.audit == []


async def test_the_token_never_shows_in_errors(sandbox: Sandbox) -> None:
    async with sandbox.client("secret-token-123") as stranger:
        with pytest.raises(Unauthorized) as caught:
            await stranger.get_flag("demo", "new-checkout")
    error = caught.value
    assert "secret-token-123" not in str(error) + repr(error) + str(error.body)


async def test_not_found_in_launchdarklys_shape(ld: LaunchDarklyClient) -> None:
    for call in (
        ld.get_flag("demo", "nope"),
        ld.get_flag("nope", "new-checkout"),
        ld.flag_statuses("demo", "staging"),
        ld.list_approval_requests("demo", "new-checkout", "staging"),
        ld.patch_flag_link("demo", "new-checkout", "nope", JsonPatch([])),
    ):
        with pytest.raises(NotFound) as caught:
            await call
        assert caught.value.code == "not_found" and caught.value.id and caught.value.message
    assert str(caught.value).startswith("Not found in LaunchDarkly: Unknown flag link 'nope'")


async def test_members_and_caller_identity(ld: LaunchDarklyClient) -> None:
    bob = await ld.find_member_by_email("BOB@example.com")
    assert bob is not None and bob.id == BOB_ID and bob.display_name == "Bob Okafor"
    assert await ld.find_member_by_email("nobody@example.com") is None
    assert (await ld.get_member(BOB_ID)).email == "bob@example.com"
    assert (await ld.get_caller_identity()).member_id == ALICE_ID
    assert (await ld.get_caller_identity(token="sandbox-bob")).member_id == BOB_ID


async def test_flag_links_are_beta(sandbox: Sandbox, ld: LaunchDarklyClient) -> None:
    link = await ld.create_flag_link(
        "demo",
        "new-checkout",
        deep_link="https://example.slack.com/archives/C1/p1",
        key="slack-c1",
        title="#releases thread",
        timestamp_ms=1763596800000,
    )
    assert link.deep_link.endswith("/p1") and link.member is not None and link.member.id == ALICE_ID
    assert link.timestamp is not None and link.timestamp.seconds == 1763596800
    changed = await ld.patch_flag_link(
        "demo", "new-checkout", link.id, JsonPatch([PatchOperation(op="replace", path="/title", value="T")])
    )
    assert changed.title == "T"
    assert [x.id for x in await ld.list_flag_links("demo", "new-checkout")] == [link.id]
    async with httpx.AsyncClient(base_url=sandbox.url) as raw:  # the same route without the beta header
        answer = await raw.get(
            "/api/v2/flag-links/projects/demo/flags/new-checkout",
            headers={"Authorization": ALICE, "LD-API-Version": API_VERSION},
        )
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"


async def test_patch_project_sorts_and_dedupes_tags(ld: LaunchDarklyClient) -> None:
    project = await ld.patch_project(
        "demo",
        JsonPatch(
            [
                PatchOperation(op="add", path="/tags/0", value="zeta"),
                PatchOperation(op="add", path="/tags/-", value="alpha"),
                PatchOperation(op="add", path="/tags/-", value="zeta"),
            ]
        ),
    )
    assert project.tags == ["alpha", "demo", "zeta"]
    with pytest.raises(InvalidRequest):
        await ld.patch_project("demo", JsonPatch([PatchOperation(op="replace", path="/key", value="x")]))
