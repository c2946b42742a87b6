"""The sandbox's own surface: control endpoints, switches, the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.launchdarkly.sandbox import Faults, SandboxState, Switches, run
from bot.launchdarkly.sandbox.changes import needs_approval
from bot.launchdarkly.sandbox.state import JsonDoc
from tests.launchdarkly.conftest import ALICE, ALICE_ID, Sandbox
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {"Authorization": ALICE, "LD-API-Version": "20240415"}
SEMANTIC = {**HEADERS, "Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"}
OFF = {"environmentKey": "test", "instructions": [{"kind": "turnFlagOff"}], "comment": "c"}


def test_request_log_audit_and_reset(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        assert http.patch("/api/v2/flags/demo/new-checkout", json=OFF, headers=SEMANTIC).status_code == 200
        (logged,) = http.get("/_sandbox/requests").json()
        assert logged["method"] == "PATCH" and logged["body"] == OFF and logged["status"] == 200
        (entry,) = http.get("/_sandbox/audit").json()
        assert entry["memberId"] == ALICE_ID and entry["instructions"] == [{"kind": "turnFlagOff"}]
        assert http.post("/_sandbox/reset").status_code == 204
        assert http.get("/_sandbox/requests").json() == [] and http.get("/_sandbox/audit").json() == []
        flag = http.get("/api/v2/flags/demo/new-checkout", headers=HEADERS).json()
        assert flag["environments"]["test"]["on"] is True and flag["_version"] == 1


def test_faults_and_switches_through_control_endpoints(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        answer = http.post("/_sandbox/faults", json={"rate_limit_every": 1, "retry_after": 2})
        assert answer.json()["rate_limit_every"] == 1
        limited = http.get("/api/v2/flags/demo/new-checkout", headers=HEADERS)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        assert int(limited.headers["X-Ratelimit-Reset"]) > time.time() * 1000
        assert http.post("/_sandbox/faults", json={"nonsense": 1}).status_code == 400
        http.post("/_sandbox/faults", json={})
        assert http.post("/_sandbox/switches", json={"dry_run_in_approval_env": "405"}).status_code == 200
        on = {"environmentKey": "production", "instructions": [{"kind": "turnFlagOn"}]}
        dry = http.patch("/api/v2/flags/demo/new-checkout?dryRun=true", json=on, headers=SEMANTIC)
        assert dry.status_code == 405
        assert sandbox.state.switches == Switches(dry_run_in_approval_env="405")
        assert http.get("/_sandbox/faults").json() == Faults().model_dump()


def test_semantic_patch_needs_its_content_type(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url) as http:
        answer = http.patch("/api/v2/flags/demo/new-checkout", json=OFF, headers=HEADERS)
    assert answer.status_code == 400 and "domain-model=launchdarkly.semanticpatch" in answer.json()["message"]


def test_delete_flag_removes_it(sandbox: Sandbox) -> None:
    body = {"instructions": [{"kind": "deleteFlag"}]}
    with httpx.Client(base_url=sandbox.url) as http:
        answer = http.patch("/api/v2/flags/demo/holiday-banner", json=body, headers=SEMANTIC)
        assert answer.status_code == 200 and "_deleted" not in answer.json()
        assert http.get("/api/v2/flags/demo/holiday-banner", headers=HEADERS).status_code == 404


def test_archiving_a_prerequisite_is_refused(sandbox: Sandbox) -> None:
    body = {"instructions": [{"kind": "archiveFlag"}]}
    with httpx.Client(base_url=sandbox.url) as http:
        answer = http.patch("/api/v2/flags/demo/new-checkout", json=body, headers=SEMANTIC)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"


def test_required_approval_tags() -> None:
    state = SandboxState.demo()
    test_env: JsonDoc = state.projects["demo"].environments["test"]
    test_env["approvalSettings"]["requiredApprovalTags"] = ["checkout"]
    flags = state.projects["demo"].flags
    assert needs_approval(test_env, flags["new-checkout"])  # tagged "checkout"
    assert not needs_approval(test_env, flags["banner-color"])


def test_run_rejects_bad_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--faults", "{not json"]) == 2
    assert "--faults" in capsys.readouterr().out


def test_python_dash_m_serves_the_sandbox() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.launchdarkly.sandbox", "--port", str(port), "--token", "tok"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v2/caller-identity", headers={"Authorization": "tok"}
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert answer.status_code == 200 and answer.json()["memberId"] == ALICE_ID
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
