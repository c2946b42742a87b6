"""A faithful in-memory LaunchDarkly, for tests, benchmarks and the offline console.

``create_app(SandboxState.demo(token=...))`` is an ASGI app speaking LaunchDarkly's REST API
(the routes flagops uses) in LaunchDarkly's shapes; ``run(argv)`` serves it
(``python -m bot sandbox --port 8765 --token T`` or ``python -m bot.launchdarkly.sandbox``).
"""

from bot.launchdarkly.sandbox.app import create_app
from bot.launchdarkly.sandbox.cli import run
from bot.launchdarkly.sandbox.state import Faults, SandboxState, Switches

__all__ = ["Faults", "SandboxState", "Switches", "create_app", "run"]
