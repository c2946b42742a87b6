"""``python -m commands``: the core on the command line (stdin, stdout, nothing else).

    explain "<text>" [--flag FLAG.json] [--project KEY]   the request a command makes, as JSON
    validate [FILE|-]                                     check a semantic-patch request body
    examples                                              every help example, one per line

Exit status: 0 on success; 1 when ``validate`` finds problems; 2 when a command is wrong (the
message and the verb's usage go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from commands.demo import DEMO_PROJECT, demo_flag, demo_flags, demo_members
from commands.errors import CommandError
from commands.help import help_text
from commands.instructions import SemanticPatch
from commands.intents import ChangeCommand, Command, HelpCommand, Schedule
from commands.parse import parse, parse_duration
from commands.registry import examples
from commands.request import plan_request, validation_problems


def _load_json(path: str) -> Any:
    """Read JSON from a file, or stdin for ``-``."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _execution_date(schedule: Schedule, now: float) -> int:
    """Epoch milliseconds for a schedule's time (``in``: from now; ``at``: read by dateparser)."""
    if schedule.kind == "in":
        return int((now + parse_duration(schedule.text)) * 1000)
    import dateparser  # only here: slow to import, and only the console needs it in commands/

    when = dateparser.parse(
        schedule.text, settings={"PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": True}
    )
    if when is None:
        raise CommandError(f'cannot read "{schedule.text}" as a time (try 2026-01-05 09:00, or 5pm tomorrow)')
    return int(when.timestamp() * 1000)


def explain(text: str, flag_file: str | None, project: str) -> int:
    """Print the request ``text`` makes; 2 on a command error."""
    try:
        cmd: Command = parse(text)
        if isinstance(cmd, HelpCommand):
            print(help_text(cmd.topic))
            return 0
        flags = demo_flags()
        members: dict[str, str] = {}
        flag_doc: dict[str, Any] | None = None
        if flag_file is not None:
            flag_doc = _load_json(flag_file)
            if isinstance(flag_doc, dict) and "key" in flag_doc:
                flags[str(flag_doc["key"])] = flag_doc
        elif getattr(cmd, "flag", None):
            flag_doc = demo_flag(str(getattr(cmd, "flag", "")))
            members = {str(m["email"]): str(m["_id"]) for m in demo_members()}
        if isinstance(cmd, ChangeCommand) and flag_doc is None:
            raise CommandError(f"{cmd.flag} is not a demo flag: pass its document with --flag FLAG.json")
        schedule = cmd.schedule if isinstance(cmd, ChangeCommand) else None
        date = _execution_date(schedule, time.time()) if schedule is not None else None
        request = plan_request(
            cmd, flag_doc, project=project, members=members, flags=flags, execution_date=date
        )
    except CommandError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.usage:
            print(f"usage: {exc.usage}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # an unreadable or invalid --flag file
        print(f"error: cannot read the flag document: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(request.as_dict(), indent=2, ensure_ascii=False))
    return 0


def validate(path: str) -> int:
    """Validate a semantic-patch body; print one line per problem. 0 valid, 1 invalid."""
    try:
        body = _load_json(path)
    except (OSError, ValueError) as exc:
        print(f"not JSON: {exc}")
        return 1
    try:
        patch = SemanticPatch.model_validate(body)
    except ValidationError as exc:
        for line in validation_problems(exc):
            print(line)
        return 1
    print(f"valid: {len(patch.instructions)} instruction(s): {', '.join(i.kind for i in patch.instructions)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m commands", description="flagops' command language")
    sub = parser.add_subparsers(dest="action", required=True)
    p_explain = sub.add_parser("explain", help="print the LaunchDarkly request a command makes")
    p_explain.add_argument("text", help='the command, e.g. "on new-checkout test"')
    p_explain.add_argument(
        "--flag", dest="flag_file", help="the flag document (JSON); default: the demo flag"
    )
    p_explain.add_argument("--project", default=DEMO_PROJECT, help="project key (default: demo)")
    p_validate = sub.add_parser("validate", help="validate a semantic-patch request body")
    p_validate.add_argument("file", nargs="?", default="-", help="a JSON file, or - for stdin (default)")
    sub.add_parser("examples", help="every help example, one per line")
    args = parser.parse_args(argv)
    if args.action == "explain":
        return explain(args.text, args.flag_file, args.project)
    if args.action == "validate":
        return validate(args.file)
    for example in examples():
        print(example.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
