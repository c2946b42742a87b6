"""Fixtures: the sandbox served on a real loopback socket, and clients talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from bot.launchdarkly.client import LaunchDarklyClient
from bot.launchdarkly.sandbox import SandboxState, create_app
from tests.servers import serve_asgi

ALICE = "sandbox-alice"
BOB = "sandbox-bob"
CAROL = "sandbox-carol"
ALICE_ID = "5f1a0000000000000000a11c"
BOB_ID = "5f1b0000000000000000b0b0"


@dataclass
class Sandbox:
    url: str
    state: SandboxState

    def client(self, token: str = ALICE, **options: object) -> LaunchDarklyClient:
        """A client with fast test settings (small timeouts, waits and backoffs)."""
        settings: dict[str, object] = {"timeout": 2.0, "max_rate_limit_wait": 1.0, "retry_backoff": 0.01}
        settings.update(options)
        return LaunchDarklyClient(self.url, token, **settings)  # type: ignore[arg-type]

    def patches(self) -> list[dict[str, object]]:
        """The PATCH requests the sandbox received."""
        return [r for r in self.state.requests if r["method"] == "PATCH"]


@pytest.fixture(scope="module")
def served() -> Iterator[Sandbox]:
    state = SandboxState.demo(ALICE, bob_token=BOB, reader_token=CAROL)
    with serve_asgi(create_app(state)) as url:
        yield Sandbox(url, state)


@pytest.fixture
def sandbox(served: Sandbox) -> Iterator[Sandbox]:
    """The served sandbox, back to the demo data before each test."""
    served.state.reset()
    yield served
    served.state.reset()


@pytest.fixture
async def ld(sandbox: Sandbox) -> AsyncIterator[LaunchDarklyClient]:
    """A client acting as alice (a writer)."""
    async with sandbox.client() as client:
        yield client
