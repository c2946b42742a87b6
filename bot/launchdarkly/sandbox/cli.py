"""``run(argv)``: serve the sandbox from the command line (``python -m bot sandbox ...``)."""

from __future__ import annotations

import argparse
import json

import uvicorn
from pydantic import ValidationError

from bot.launchdarkly.sandbox.app import create_app
from bot.launchdarkly.sandbox.state import Faults, SandboxState, Switches


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot sandbox",
        description="Serve an in-memory LaunchDarkly (project 'demo'; environments test and production, "
        "production requires approval).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    parser.add_argument("--token", default="sandbox-alice", help="alice's access token (a writer)")
    parser.add_argument("--bob-token", default="sandbox-bob", help="bob's access token (a writer)")
    parser.add_argument("--reader-token", default="sandbox-carol", help="carol's access token (a reader)")
    parser.add_argument("--faults", default="{}", help="fault settings as JSON, e.g. '{\"latency\": 0.2}'")
    parser.add_argument(
        "--dry-run-in-approval-env",
        choices=["preview", "405"],
        default="preview",
        help="what a dry run answers where approval is required (LaunchDarkly does not document it)",
    )
    parser.add_argument(
        "--approval-405-message",
        choices=["action", "generic"],
        default="action",
        help="the wording of the 405 that asks for an approval",
    )
    return parser


def run(argv: list[str]) -> int:
    """Serve the sandbox until interrupted.

    Args:
        argv: the command-line arguments after ``sandbox`` (see ``--help``).

    Returns:
        The process exit status: 0 after a clean stop, 2 for bad arguments.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = Faults.model_validate(json.loads(args.faults))
    except (ValueError, ValidationError) as exc:
        parser.print_usage()
        print(f"--faults: {exc}")
        return 2
    state = SandboxState.demo(
        args.token,
        bob_token=args.bob_token,
        reader_token=args.reader_token,
        faults=faults,
        switches=Switches(
            dry_run_in_approval_env=args.dry_run_in_approval_env,
            approval_405_message=args.approval_405_message,
        ),
    )
    print(f"LaunchDarkly sandbox on http://{args.host}:{args.port} (token for alice: {args.token})")
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")
    return 0
