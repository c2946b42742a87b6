"""``python -m bot.launchdarkly.sandbox --port 8765 --token T``: serve the sandbox."""

import sys

from bot.launchdarkly.sandbox.cli import run

sys.exit(run(sys.argv[1:]))
