"""Every sandbox response deserialises with LaunchDarkly's own generated client's models.

The ``launchdarkly-api`` package is generated from LaunchDarkly's OpenAPI spec; if its models
accept what the sandbox sends, the sandbox speaks LaunchDarkly's shapes, not only ours.

No generated model had to be excused. One disagreement between LaunchDarkly's sources was
decided for the generated model: seed 004 prints a project's ``environments`` as a bare array,
while ``Project.environments`` (API version 20240415) is an expandable collection
``{"items", "totalCount", "_links"}``; the sandbox sends the collection, only when
``expand=environments``, and flagops' own ``Project`` model accepts both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from launchdarkly_api.models.caller_identity_rep import CallerIdentityRep
from launchdarkly_api.models.environment import Environment
from launchdarkly_api.models.environments import Environments
from launchdarkly_api.models.expandable_approval_request_response import ExpandableApprovalRequestResponse
from launchdarkly_api.models.expandable_approval_requests_response import ExpandableApprovalRequestsResponse
from launchdarkly_api.models.feature_flag import FeatureFlag
from launchdarkly_api.models.feature_flag_scheduled_change import FeatureFlagScheduledChange
from launchdarkly_api.models.feature_flag_scheduled_changes import FeatureFlagScheduledChanges
from launchdarkly_api.models.feature_flag_statuses import FeatureFlagStatuses
from launchdarkly_api.models.feature_flags import FeatureFlags
from launchdarkly_api.models.flag_config_approval_request_response import FlagConfigApprovalRequestResponse
from launchdarkly_api.models.flag_config_approval_requests_response import FlagConfigApprovalRequestsResponse
from launchdarkly_api.models.flag_link_collection_rep import FlagLinkCollectionRep
from launchdarkly_api.models.flag_link_rep import FlagLinkRep
from launchdarkly_api.models.forbidden_error_rep import ForbiddenErrorRep
from launchdarkly_api.models.invalid_request_error_rep import InvalidRequestErrorRep
from launchdarkly_api.models.member import Member
from launchdarkly_api.models.members import Members
from launchdarkly_api.models.method_not_allowed_error_rep import MethodNotAllowedErrorRep
from launchdarkly_api.models.not_found_error_rep import NotFoundErrorRep
from launchdarkly_api.models.project import Project
from launchdarkly_api.models.rate_limited_error_rep import RateLimitedErrorRep
from launchdarkly_api.models.status_conflict_error_rep import StatusConflictErrorRep
from launchdarkly_api.models.unauthorized_error_rep import UnauthorizedErrorRep

from bot.launchdarkly.sandbox import Faults
from tests.launchdarkly.conftest import ALICE, BOB, BOB_ID, CAROL, Sandbox

SEMANTIC = {"Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"}
FLAG_ENV = "/api/v2/projects/demo/flags/new-checkout/environments"


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"Authorization": ALICE, "LD-API-Version": "20240415"}
    with httpx.Client(base_url=sandbox.url, headers=headers) as client:
        yield client


def parsed(model: Any, response: httpx.Response, status: int = 200) -> Any:
    """Deserialise with the generated model, the way its ApiClient does."""
    assert response.status_code == status, response.text
    result = model.from_dict(response.json())
    assert result is not None
    return result


def test_flags(http: httpx.Client) -> None:
    for key in ("new-checkout", "banner-color", "pricing-page", "express-shipping", "holiday-banner"):
        flag = parsed(FeatureFlag, http.get(f"/api/v2/flags/demo/{key}"))
        assert flag.key == key and flag.environments is not None
    assert len(parsed(FeatureFlags, http.get("/api/v2/flags/demo")).items) == 5
    page = parsed(
        FeatureFlags, http.get("/api/v2/flags/demo", params={"env": "test", "summary": "0", "limit": 2})
    )
    assert page.total_count == 5 and page.items[0].environments["test"].targets
    body = {"environmentKey": "test", "instructions": [{"kind": "turnFlagOff"}]}
    patched = parsed(FeatureFlag, http.patch("/api/v2/flags/demo/new-checkout", json=body, headers=SEMANTIC))
    assert patched.environments["test"].on is False
    rule = {
        "kind": "addRule",
        "variationId": "903052d7-527c-52b5-b27a-8436463aa644",
        "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@example.com"]}],
    }
    body = {"environmentKey": "test", "instructions": [rule]}
    parsed(FeatureFlag, http.patch("/api/v2/flags/demo/new-checkout", json=body, headers=SEMANTIC))
    merged = http.patch("/api/v2/flags/demo/banner-color", json={"description": "d"})
    assert parsed(FeatureFlag, merged).description == "d"
    json_patch = {"patch": [{"op": "replace", "path": "/name", "value": "Banner"}]}
    assert (
        parsed(FeatureFlag, http.patch("/api/v2/flags/demo/banner-color", json=json_patch)).name == "Banner"
    )


def test_statuses_environments_projects_members(http: httpx.Client) -> None:
    statuses = parsed(FeatureFlagStatuses, http.get("/api/v2/flag-statuses/demo/production"))
    assert {s.name for s in statuses.items} == {"active", "inactive", "new", "launched"}
    envs = parsed(Environments, http.get("/api/v2/projects/demo/environments"))
    assert envs.items[1].approval_settings.required is True
    parsed(Environment, http.get("/api/v2/projects/demo/environments/test"))
    project = parsed(Project, http.get("/api/v2/projects/demo", params={"expand": "environments"}))
    assert project.environments.total_count == 2
    patched = http.patch("/api/v2/projects/demo", json=[{"op": "add", "path": "/tags/-", "value": "a"}])
    assert parsed(Project, patched).tags == ["a", "demo"]
    members = parsed(Members, http.get("/api/v2/members", params={"filter": "email:bob@example.com"}))
    assert [m.id for m in members.items] == [BOB_ID]
    parsed(Member, http.get(f"/api/v2/members/{BOB_ID}"))
    assert parsed(CallerIdentityRep, http.get("/api/v2/caller-identity")).member_id


def test_approvals_and_scheduled_changes(http: httpx.Client) -> None:
    body = {"description": "on", "instructions": [{"kind": "turnFlagOn"}], "notifyMemberIds": [BOB_ID]}
    created = parsed(
        FlagConfigApprovalRequestResponse,
        http.post(f"{FLAG_ENV}/production/approval-requests", json=body),
        201,
    )
    review = http.post(
        f"{FLAG_ENV}/production/approval-requests/{created.id}/reviews",
        json={"kind": "approve"},
        headers={"Authorization": BOB},
    )
    assert parsed(FlagConfigApprovalRequestResponse, review).review_status == "approved"
    parsed(FlagConfigApprovalRequestsResponse, http.get(f"{FLAG_ENV}/production/approval-requests"))
    applied = http.post(f"{FLAG_ENV}/production/approval-requests/{created.id}/apply", json={})
    assert parsed(FlagConfigApprovalRequestResponse, applied).status == "completed"
    everything = http.get("/api/v2/approval-requests", params={"expand": "flag,project,environments"})
    assert parsed(ExpandableApprovalRequestsResponse, everything).items[0].flag.key == "new-checkout"
    one = parsed(ExpandableApprovalRequestResponse, http.get(f"/api/v2/approval-requests/{created.id}"))
    assert one.resource_id == "proj/demo:env/production:flag/new-checkout"

    body = {"executionDate": 2_000_000_000_000, "instructions": [{"kind": "turnFlagOff"}]}
    parsed(FeatureFlagScheduledChange, http.post(f"{FLAG_ENV}/test/scheduled-changes", json=body), 201)
    assert len(parsed(FeatureFlagScheduledChanges, http.get(f"{FLAG_ENV}/test/scheduled-changes")).items) == 1


def test_flag_links(http: httpx.Client) -> None:
    beta = {"LD-API-Version": "beta"}
    links = "/api/v2/flag-links/projects/demo/flags/new-checkout"
    link = parsed(
        FlagLinkRep, http.post(links, json={"deepLink": "https://x.slack.com/p1"}, headers=beta), 201
    )
    patch = [{"op": "replace", "path": "/title", "value": "thread"}]
    assert parsed(FlagLinkRep, http.patch(f"{links}/{link.id}", json=patch, headers=beta)).title == "thread"
    assert len(parsed(FlagLinkCollectionRep, http.get(links, headers=beta)).items) == 1
    parsed(ForbiddenErrorRep, http.get(links), 403)


def test_error_bodies(sandbox: Sandbox, http: httpx.Client) -> None:
    parsed(NotFoundErrorRep, http.get("/api/v2/flags/demo/nope"), 404)
    parsed(
        UnauthorizedErrorRep, http.get("/api/v2/flags/demo/new-checkout", headers={"Authorization": "x"}), 401
    )
    on = {"environmentKey": "test", "instructions": [{"kind": "turnFlagOn"}]}
    parsed(
        ForbiddenErrorRep,
        http.patch("/api/v2/flags/demo/new-checkout", json=on, headers={**SEMANTIC, "Authorization": CAROL}),
        403,
    )
    bad = {"environmentKey": "test", "instructions": [{"kind": "removeRule", "ruleId": 3}]}
    parsed(
        InvalidRequestErrorRep, http.patch("/api/v2/flags/demo/new-checkout", json=bad, headers=SEMANTIC), 400
    )
    production = {"environmentKey": "production", "instructions": [{"kind": "turnFlagOn"}]}
    parsed(
        MethodNotAllowedErrorRep,
        http.patch("/api/v2/flags/demo/new-checkout", json=production, headers=SEMANTIC),
        405,
    )
    stale = {"patch": [{"op": "test", "path": "/_version", "value": 99}]}
    parsed(StatusConflictErrorRep, http.patch("/api/v2/flags/demo/new-checkout", json=stale), 409)
    sandbox.state.faults = Faults(rate_limit_every=1)
    parsed(RateLimitedErrorRep, http.get("/api/v2/flags/demo/new-checkout"), 429)
