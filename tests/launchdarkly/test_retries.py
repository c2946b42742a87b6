"""The retry policy, against the sandbox's fault injection on a real socket."""

from __future__ import annotations

import time

import pytest

from bot.launchdarkly.errors import (
    ConnectionFailed,
    OutcomeUnknown,
    PatchFailed,
    RateLimited,
    ServerError,
    Unreachable,
)
from bot.launchdarkly.sandbox import Faults
from commands.instructions import SemanticPatch, TurnFlagOff
from tests.launchdarkly.conftest import Sandbox
from tests.servers import free_port

OFF_IN_TEST = SemanticPatch(environmentKey="test", instructions=[TurnFlagOff()])


def _on_in_test(sandbox: Sandbox) -> bool:
    return bool(sandbox.state.projects["demo"].flags["new-checkout"]["environments"]["test"]["on"])


async def test_429_waits_for_retry_after_then_succeeds(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(rate_limit_every=2, retry_after=0.05)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async with sandbox.client(sleep=record) as ld:
        await ld.get_flag("demo", "new-checkout")  # request 1
        flag = await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)  # 2 is a 429, 3 applies
    assert flag.environments["test"].on is False
    assert len(waits) == 1 and 0.05 <= waits[0] <= 0.05 * 1.25  # Retry-After plus jitter
    assert [r["status"] for r in sandbox.patches()] == [429, 200]  # safe: a 429 was not applied
    assert len(sandbox.state.audit) == 1


async def test_429_uses_the_reset_header_without_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(rate_limit_every=1, retry_after=None, reset_after=0.3)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        sandbox.state.faults = Faults()  # the limit lifts

    async with sandbox.client(sleep=record) as ld:
        await ld.get_flag("demo", "new-checkout")
    assert len(waits) == 1 and 0.0 < waits[0] <= 0.3 * 1.25


async def test_429_gives_up_within_the_bounded_wait(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(rate_limit_every=1, retry_after=0.1)
    started = time.monotonic()
    async with sandbox.client(max_rate_limit_wait=0.35) as ld:
        with pytest.raises(RateLimited) as caught:
            await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert time.monotonic() - started < 1.0
    assert caught.value.status == 429 and caught.value.code == "rate_limited"
    assert caught.value.retry_after is not None
    assert 3 <= len(sandbox.patches()) <= 4 and _on_in_test(sandbox)


async def test_reads_retry_5xx_then_give_up(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(error_every=2, error_status=503)
    async with sandbox.client() as ld:
        await ld.get_flag("demo", "new-checkout")  # 1
        assert (await ld.get_flag("demo", "banner-color")).key == "banner-color"  # 2 fails, 3 ok
        sandbox.state.faults = Faults(error_every=1, error_status=500)
        with pytest.raises(ServerError) as caught:
            await ld.get_flag("demo", "new-checkout")
    assert caught.value.status == 500
    assert len([r for r in sandbox.state.requests if r["status"] == 500]) == 3  # 1 + 2 retries


async def test_a_write_answered_5xx_is_outcome_unknown_and_not_resent(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(error_every=1, error_status=502, methods=["PATCH"])
    async with sandbox.client() as ld:
        with pytest.raises(OutcomeUnknown) as caught:
            await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert caught.value.status == 502
    assert len(sandbox.patches()) == 1


async def test_a_patch_that_times_out_is_never_resent(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(hang=0.6, hang_every=1, methods=["PATCH"])
    async with sandbox.client(timeout=0.2) as ld:
        with pytest.raises(OutcomeUnknown) as caught:
            await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert "may or may not" in str(caught.value)
    assert len(sandbox.patches()) == 1  # exactly one PATCH reached the sandbox
    assert not _on_in_test(sandbox)  # ... and it was applied: the caller must re-read


async def test_a_dropped_connection_on_a_write_is_outcome_unknown(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(drop_every=1, methods=["PATCH"])
    async with sandbox.client() as ld:
        with pytest.raises(OutcomeUnknown):
            await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert len(sandbox.patches()) == 1 and not _on_in_test(sandbox)


async def test_a_dropped_connection_on_a_read_is_retried(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(drop_every=2)
    async with sandbox.client() as ld:
        await ld.get_flag("demo", "new-checkout")  # 1
        assert (await ld.get_flag("demo", "banner-color")).key == "banner-color"  # 2 dropped, 3 ok
    assert [r["status"] for r in sandbox.state.requests] == [200, "dropped", 200]


async def test_a_read_that_times_out_is_retried_then_unreachable(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(latency=0.3)
    async with sandbox.client(timeout=0.1, read_retries=1) as ld:
        with pytest.raises(Unreachable):
            await ld.get_flag("demo", "new-checkout")
    assert len(sandbox.state.requests) == 2


async def test_no_connection_is_connection_failed_even_for_writes() -> None:
    from bot.launchdarkly.client import LaunchDarklyClient

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with LaunchDarklyClient(url, "t", timeout=0.5, retry_backoff=0.01) as ld:
        with pytest.raises(ConnectionFailed) as caught:
            await ld.get_flag("demo", "new-checkout")
        assert caught.value.status is None and caught.value.path == "/api/v2/flags/demo/new-checkout"
        # nothing left this process, so a write is not "outcome unknown"
        with pytest.raises(ConnectionFailed):
            await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)


async def test_latency_is_added(sandbox: Sandbox) -> None:
    sandbox.state.faults = Faults(latency=0.1)
    started = time.monotonic()
    async with sandbox.client() as ld:
        await ld.get_flag("demo", "new-checkout")
    assert time.monotonic() - started >= 0.1


async def test_status_422_is_patch_failed(sandbox: Sandbox) -> None:
    # LaunchDarkly documents no 422 for the routes the sandbox serves; the fault stands in for it.
    sandbox.state.faults = Faults(error_every=1, error_status=422)
    async with sandbox.client() as ld:
        with pytest.raises(PatchFailed) as caught:
            await ld.patch_flag_semantic("demo", "new-checkout", OFF_IN_TEST)
    assert caught.value.code == "patch_failed" and len(sandbox.patches()) == 1
