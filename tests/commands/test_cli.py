"""`python -m commands`, run as a subprocess: explain, validate, examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from commands import examples
from commands.demo import demo_flag

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commands", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def explained(text: str, *extra: str) -> dict[str, Any]:
    done = run("explain", text, *extra)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_explain_a_change_against_the_demo_flag() -> None:
    assert explained("on new-checkout production") == {
        "method": "PATCH",
        "path": "/api/v2/flags/demo/new-checkout",
        "query": {},
        "content_type": "application/json; domain-model=launchdarkly.semanticpatch",
        "body": {"environmentKey": "production", "instructions": [{"kind": "turnFlagOn"}]},
    }


def test_explain_reads_and_queries() -> None:
    assert explained("show pricing-page production", "--project", "shop") == {
        "method": "GET",
        "path": "/api/v2/flags/shop/pricing-page",
        "query": {"env": "production"},
        "content_type": None,
        "body": None,
    }
    listed = explained("list checkout --tag web")
    assert listed["path"] == "/api/v2/flags/demo" and listed["query"] == {"filter": "query:checkout,tags:web"}


def test_explain_raw_requests() -> None:
    op = '[{"op": "replace", "path": "/title", "value": "Launch"}]'
    link = explained(f"link-patch new-checkout l1 {op}")
    assert (link["method"], link["path"], link["content_type"]) == (
        "PATCH",
        "/api/v2/flag-links/projects/demo/flags/new-checkout/l1",
        "application/json",
    )
    assert link["body"] == json.loads(op)
    project = explained('project-patch [{"op": "add", "path": "/tags/-", "value": "x"}]')
    assert project["path"] == "/api/v2/projects/demo"


def test_explain_an_approval_and_a_schedule() -> None:
    approval = explained('on new-checkout production --approval -m "Launch" in 2 hours')
    assert approval["method"] == "POST"
    assert (
        approval["path"]
        == "/api/v2/projects/demo/flags/new-checkout/environments/production/approval-requests"
    )
    assert approval["body"]["description"] == "Launch" and isinstance(approval["body"]["executionDate"], int)
    scheduled = explained("off new-checkout test at 2030-01-05 09:00")
    assert scheduled["path"].endswith("/environments/test/scheduled-changes")


def test_explain_with_a_flag_file(tmp_path: Path) -> None:
    flag = demo_flag("new-checkout")
    assert flag is not None
    flag["key"] = "my-flag"
    path = tmp_path / "flag.json"
    path.write_text(json.dumps(flag))
    request = explained("target my-flag test carol -> Disabled", "--flag", str(path), "--project", "shop")
    assert request["path"] == "/api/v2/flags/shop/my-flag"
    assert request["body"]["instructions"][0]["variationId"] == flag["variations"][1]["_id"]


def test_explain_errors_exit_2_with_message_and_usage() -> None:
    done = run("explain", "serve new-checkout test ture")
    assert done.returncode == 2 and done.stdout == ""
    assert 'no variation "ture" on new-checkout, did you mean "true"? (true, false)' in done.stderr
    done = run("explain", "add rule pricing-page test if country IN US serve v2")
    assert done.returncode == 2
    assert "usage: add rule <flag> <env>" in done.stderr
    done = run("explain", "on unknown-flag test")
    assert done.returncode == 2 and "--flag" in done.stderr


def test_validate() -> None:
    good = {"environmentKey": "test", "instructions": [{"kind": "turnFlagOn"}]}
    done = run("validate", "-", stdin=json.dumps(good))
    assert done.returncode == 0, done.stdout
    bad = {
        "instructions": [
            {"kind": "turnFlagOn"},
            {"kind": "addRule", "clauses": [], "variationId": "v", "rolloutWeights": {"v": 100000}},
            {"kind": "nope"},
        ]
    }
    done = run("validate", stdin=json.dumps(bad))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "instructions[1] (addRule): addRule serves either variationId or rolloutWeights, not both" in lines
    assert "instructions[2]: unknown instruction kind 'nope'" in lines
    done = run("validate", stdin=json.dumps({"instructions": [{"kind": "turnFlagOn"}]}))
    assert done.returncode == 1 and "environmentKey is required" in done.stdout
    assert run("validate", stdin="{not json").returncode == 1


def test_validate_a_file(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_text(json.dumps({"instructions": [{"kind": "addTags", "values": ["a"]}]}))
    assert run("validate", str(path)).returncode == 0


def test_examples_one_per_line() -> None:
    done = run("examples")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [e.text for e in examples()]
