"""The sandbox applies JSON patches and merge patches on flags and JSON patches on projects as the
reference pages document them (seeds 002/003 and 004), over HTTP; and the client sends them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.errors import ApprovalRequired, ConflictError, OptimisticLockError
from commands.instructions import (
    FlagJsonPatch,
    FlagMergePatch,
    JsonPatch,
    MergePatch,
    TurnFlagOn,
)
from tests.launchdarkly.conftest import ALICE, Sandbox

HEADERS = {"Authorization": ALICE, "LD-API-Version": "20240415"}
FLAG = "/api/v2/flags/demo/new-checkout"


def patch(sandbox: Sandbox, body: Any, *, path: str = FLAG, query: str = "") -> httpx.Response:
    with httpx.Client(base_url=sandbox.url) as http:
        return http.patch(f"{path}{query}", json=body, headers=HEADERS)


def stored(sandbox: Sandbox, key: str = "new-checkout") -> dict[str, Any]:
    flag: dict[str, Any] = sandbox.state.projects["demo"].flags[key]
    return flag


def test_a_json_patch_with_a_comment_is_applied_and_audited(sandbox: Sandbox) -> None:
    body = {
        "patch": [
            {"op": "test", "path": "/_version", "value": 1},
            {"op": "replace", "path": "/environments/test/on", "value": False},
        ],
        "comment": "flagops change abc",
    }
    answer = patch(sandbox, body)
    assert answer.status_code == 200 and answer.json()["environments"]["test"]["on"] is False
    assert answer.json()["_version"] == 2 and answer.json()["environments"]["test"]["version"] == 2
    (entry,) = sandbox.state.ld_audit
    assert entry["comment"] == "flagops change abc"
    assert [a["resource"] for a in entry["accesses"]] == ["proj/demo:env/test:flag/new-checkout"]


def test_a_merge_patch_with_a_comment_is_updates_with_comments(sandbox: Sandbox) -> None:
    answer = patch(sandbox, {"merge": {"description": "Merged"}, "comment": "why"})
    assert answer.status_code == 200 and answer.json()["description"] == "Merged"
    assert "merge" not in stored(sandbox), "the wrapper is not a field of the flag"
    assert sandbox.state.ld_audit[-1]["comment"] == "why"
    plain = patch(sandbox, {"description": "Plain"})
    assert plain.status_code == 200 and stored(sandbox)["description"] == "Plain"
    assert "comment" not in sandbox.state.ld_audit[-1]


@pytest.mark.parametrize(
    "body",
    [
        {"patch": [{"op": "replace", "path": "/environments/test/on", "value": False}]},
        {"merge": {"environments": {"test": {"on": False}}}},
    ],
    ids=["json-patch", "merge-patch"],
)
def test_a_dry_run_answers_the_flag_as_it_would_be_and_stores_nothing(sandbox: Sandbox, body: Any) -> None:
    answer = patch(sandbox, body, query="?dryRun=true")
    assert answer.status_code == 200 and answer.json()["environments"]["test"]["on"] is False
    assert stored(sandbox)["environments"]["test"]["on"] is True and stored(sandbox)["_version"] == 1
    assert sandbox.state.ld_audit == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            {"patch": [{"op": "replace", "path": "/environments/test/on", "value": "yes"}]},
            "must be true or false",
        ),
        (
            {"patch": [{"op": "add", "path": "/colour", "value": "red"}]},
            "is not a field of a LaunchDarkly flag",
        ),
        (
            {"patch": [{"op": "replace", "path": "/environments/test/version", "value": 9}]},
            "set by LaunchDarkly",
        ),
        ({"patch": [{"op": "remove", "path": "/environments/test/rules/0"}]}, "Invalid JSON patch"),
        ({"merge": {"environments": {"staging": {"on": True}}}}, "is not an environment of this flag"),
    ],
)
def test_a_patch_launchdarkly_would_refuse_is_a_400(sandbox: Sandbox, body: Any, said: str) -> None:
    answer = patch(sandbox, body)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"
    assert said in answer.json()["message"]
    assert stored(sandbox)["_version"] == 1


def test_a_failing_test_operation_changes_nothing(sandbox: Sandbox) -> None:
    body = {
        "patch": [
            {"op": "test", "path": "/environments/test/on", "value": False},
            {"op": "replace", "path": "/description", "value": "no"},
        ]
    }
    answer = patch(sandbox, body)
    assert answer.status_code == 409 and answer.json()["code"] == "optimistic_locking_error"
    assert stored(sandbox)["description"] != "no"


def test_approval_environments_refuse_the_write_and_preview_the_dry_run(sandbox: Sandbox) -> None:
    body = {"merge": {"environments": {"production": {"on": True}}}}
    refused = patch(sandbox, body)
    assert refused.status_code == 405 and "updateOn" in refused.json()["message"]
    assert patch(sandbox, body, query="?dryRun=true").status_code == 200, "as for semantic patches"
    sandbox.state.switches = sandbox.state.switches.model_copy(update={"dry_run_in_approval_env": "405"})
    assert patch(sandbox, body, query="?dryRun=true").status_code == 405
    # Changing production's description of a variation is not targeting: no approval needed.
    assert patch(sandbox, {"merge": {"description": "flag-level"}}).status_code == 200


async def test_conflicts_with_pending_changes_and_ignore_conflicts(
    sandbox: Sandbox, ld: LaunchDarklyClient
) -> None:
    await ld.create_scheduled_change(
        "demo", "new-checkout", "test", execution_date=4102444800000, instructions=[TurnFlagOn()]
    )
    off = FlagJsonPatch.model_validate(
        {"patch": [{"op": "replace", "path": "/environments/test/on", "value": False}]}
    )
    with pytest.raises(ConflictError):
        await ld.patch_flag_json("demo", "new-checkout", off)
    with pytest.raises(ConflictError):
        await ld.patch_flag_merge(
            "demo", "new-checkout", MergePatch({"environments": {"test": {"on": False}}})
        )
    flag = await ld.patch_flag_json("demo", "new-checkout", off, ignore_conflicts=True)
    assert flag.environments["test"].on is False


async def test_the_client_sends_json_and_merge_patches_as_application_json(
    sandbox: Sandbox, ld: LaunchDarklyClient
) -> None:
    body = FlagJsonPatch.model_validate({"patch": [{"op": "replace", "path": "/description", "value": "D"}]})
    preview = await ld.patch_flag_json("demo", "new-checkout", body, dry_run=True)
    assert preview.description == "D" and stored(sandbox)["description"] != "D"
    await ld.patch_flag_merge("demo", "new-checkout", FlagMergePatch(merge={"description": "M"}, comment="c"))
    dry, sent = sandbox.patches()
    assert dry["query"] == {"dryRun": "true"} and dry["contentType"] == "application/json"
    assert sent["body"] == {"merge": {"description": "M"}, "comment": "c"} and sent["query"] == {}
    assert stored(sandbox)["description"] == "M"
    with pytest.raises(ApprovalRequired):
        await ld.patch_flag_merge(
            "demo", "new-checkout", MergePatch({"environments": {"production": {"on": True}}})
        )
    with pytest.raises(OptimisticLockError):
        await ld.patch_flag_json(
            "demo",
            "new-checkout",
            FlagJsonPatch.model_validate({"patch": [{"op": "test", "path": "/_version", "value": 1}]}),
        )


async def test_a_project_patch_is_a_bare_array_with_tags_deduplicated_and_sorted(
    sandbox: Sandbox, ld: LaunchDarklyClient
) -> None:
    before = (await ld.get_project("demo")).document()
    assert before["key"] == "demo" and before["tags"] == ["demo"]
    ops = [
        {"op": "add", "path": "/tags/0", "value": "zeta"},
        {"op": "add", "path": "/tags/-", "value": "alpha"},
        {"op": "add", "path": "/tags/-", "value": "zeta"},
    ]
    project = await ld.patch_project("demo", JsonPatch.model_validate(ops))
    assert project.tags == ["alpha", "demo", "zeta"]
    (sent,) = sandbox.patches()
    assert sent["body"] == ops and sent["contentType"] == "application/json"


@pytest.mark.parametrize(
    ("ops", "said"),
    [
        ([{"op": "replace", "path": "/key", "value": "x"}], "cannot be changed"),
        ([{"op": "replace", "path": "/includeInSnippetByDefault", "value": "yes"}], "must be true or false"),
        ([{"op": "add", "path": "/tags/0", "value": None}], "must be a list of tags"),
        ([{"op": "test", "path": "/name", "value": "Other"}], "A test operation failed"),
    ],
)
def test_a_bad_project_patch_is_refused(sandbox: Sandbox, ops: list[dict[str, Any]], said: str) -> None:
    before = dict(sandbox.state.projects["demo"].doc)
    answer = patch(sandbox, ops, path="/api/v2/projects/demo")
    assert answer.status_code in (400, 409) and said in answer.json()["message"], answer.json()
    assert sandbox.state.projects["demo"].doc == before


def test_a_dry_run_on_a_project_is_not_documented_so_the_patch_applies(sandbox: Sandbox) -> None:
    # Seed 004 and the OpenAPI spec give the project PATCH no dryRun: the sandbox ignores the
    # parameter, as the documented API would, which is why the bot never sends it there.
    answer = patch(
        sandbox,
        [{"op": "replace", "path": "/name", "value": "Renamed"}],
        path="/api/v2/projects/demo",
        query="?dryRun=true",
    )
    assert answer.status_code == 200 and sandbox.state.projects["demo"].doc["name"] == "Renamed"
