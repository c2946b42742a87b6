"""The sandbox's segments and ``flags/evaluate``, through the client and through LaunchDarkly's own
generated models (``launchdarkly-api``), and the audit log's versions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from launchdarkly_api.models.audit_log_entry_listing_rep_collection import AuditLogEntryListingRepCollection
from launchdarkly_api.models.audit_log_entry_rep import AuditLogEntryRep
from launchdarkly_api.models.context_instance_evaluations import ContextInstanceEvaluations
from launchdarkly_api.models.user_segment import UserSegment
from launchdarkly_api.models.user_segments import UserSegments

from bot.launchdarkly import errors as ld_errors
from bot.launchdarkly.client import LaunchDarklyClient
from commands.keys import InvalidKey
from tests.launchdarkly.conftest import ALICE, BOB, Sandbox

EVALUATE = "/api/v2/projects/demo/environments/{env}/flags/evaluate"
SEMANTIC = {"Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"}


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": ALICE, "LD-API-Version": "20240415"}
    with httpx.Client(base_url=sandbox.url, headers=headers) as client:
        yield client


async def answer(ld: LaunchDarklyClient, flag: str, env: str, context: dict[str, Any]) -> tuple[Any, Any]:
    (item,) = [a for a in await ld.evaluate_context("demo", env, context, flag=flag) if a.key == flag]
    assert item.reason is not None
    return item.value, item.reason.document()


async def test_evaluate_gives_value_and_reason_for_each_case(ld: LaunchDarklyClient) -> None:
    assert await answer(ld, "new-checkout", "test", {"kind": "user", "key": "alice"}) == (
        True,
        {"kind": "TARGET_MATCH"},
    )
    assert await answer(ld, "new-checkout", "production", {"kind": "user", "key": "alice"}) == (
        False,
        {"kind": "OFF"},
    )
    value, reason = await answer(ld, "pricing-page", "test", {"kind": "user", "key": "ann"})
    assert value == "v2" and reason["kind"] == "RULE_MATCH" and reason["ruleIndex"] == 0 and reason["ruleID"]
    eu = {"kind": "user", "key": "jo", "country": "DE", "plan": "pro"}
    assert (await answer(ld, "pricing-page", "production", eu))[1]["ruleIndex"] == 1
    staff = {
        "kind": "multi",
        "user": {"key": "sam", "email": "sam@example.com"},
        "organization": {"key": "acme", "tier": 3},
    }
    assert (await answer(ld, "pricing-page", "test", staff))[1]["ruleIndex"] == 2
    # The 50/50 rollout of banner-color in test: alice's bucket is 31.7 (blue), bob's 71.1 (green).
    assert await answer(ld, "banner-color", "test", {"key": "alice"}) == ("blue", {"kind": "FALLTHROUGH"})
    assert await answer(ld, "banner-color", "test", {"key": "bob"}) == ("green", {"kind": "FALLTHROUGH"})


async def test_a_failed_prerequisite(ld: LaunchDarklyClient, sandbox: Sandbox) -> None:
    sandbox.state.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"] = False
    assert await answer(ld, "express-shipping", "test", {"key": "anyone"}) == (
        False,
        {"kind": "PREREQUISITE_FAILED", "prerequisiteKey": "new-checkout"},
    )


async def test_the_filter_narrows_and_every_flag_is_evaluated_without_it(ld: LaunchDarklyClient) -> None:
    everything = await ld.evaluate_context("demo", "test", {"key": "alice"})
    assert {a.key for a in everything} == {
        "new-checkout",
        "banner-color",
        "pricing-page",
        "express-shipping",
        "holiday-banner",
    }
    assert [a.key for a in await ld.evaluate_context("demo", "test", {"key": "alice"}, flag="color")] == [
        "banner-color"
    ]
    with pytest.raises(InvalidKey):
        await ld.evaluate_context("demo", "test", {"key": "alice"}, flag="x, tags contains")


async def test_a_bad_context_is_a_400_and_unknown_places_404(ld: LaunchDarklyClient) -> None:
    for context in [{"kind": "user"}, {"kind": "multi"}, {"kind": "user", "key": 3}]:
        with pytest.raises(ld_errors.InvalidRequest, match="Invalid context"):
            await ld.evaluate_context("demo", "test", context)
    with pytest.raises(ld_errors.NotFound):
        await ld.evaluate_context("demo", "staging", {"key": "a"})
    with pytest.raises(ld_errors.NotFound):
        await ld.get_segment("demo", "test", "nobody")
    assert (await ld.get_segment("demo", "test", "beta-testers")).name == "Beta testers"


def test_the_generated_models_read_evaluations_segments_and_the_audit_log(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    evaluated = http.post(EVALUATE.format(env="test"), json={"kind": "user", "key": "ann"})
    assert evaluated.status_code == 200, evaluated.text
    items = ContextInstanceEvaluations.from_dict(evaluated.json())
    assert items is not None and {i.key for i in items.items} >= {"pricing-page"}
    pricing = next(i for i in items.items if i.key == "pricing-page")
    assert pricing.value == "v2" and pricing.reason is not None and pricing.reason.kind == "RULE_MATCH"
    segments = UserSegments.from_dict(http.get("/api/v2/segments/demo/test").json())
    assert segments is not None and [s.key for s in segments.items] == ["beta-testers"]
    one = UserSegment.from_dict(http.get("/api/v2/segments/demo/production/beta-testers").json())
    assert one is not None and one.included == ["ann", "ben"]
    # A change made with bob's token, straight to LaunchDarkly: its audit entry holds both versions.
    off = {"environmentKey": "test", "instructions": [{"kind": "turnFlagOff"}], "comment": "night switch"}
    changed = http.patch(
        "/api/v2/flags/demo/new-checkout", json=off, headers={**SEMANTIC, "Authorization": BOB}
    )
    assert changed.status_code == 200
    spec = "proj/demo:env/test:flag/new-checkout"
    listing = AuditLogEntryListingRepCollection.from_dict(
        http.get("/api/v2/auditlog", params={"spec": spec}).json()
    )
    assert listing is not None and listing.items[0].comment == "night switch"
    entry = AuditLogEntryRep.from_dict(http.get(f"/api/v2/auditlog/{listing.items[0].id}").json())
    assert entry is not None and entry.member is not None and entry.member.email == "bob@example.com"
    raw = http.get(f"/api/v2/auditlog/{listing.items[0].id}").json()
    assert raw["previousVersion"]["environments"]["test"]["on"] is True
    assert raw["currentVersion"]["environments"]["test"]["on"] is False
