"""flagops' pure core: the command language and LaunchDarkly's semantic-patch instructions.

No I/O here (a test checks that nothing imports Slack, HTTP, database or scheduler libraries)::

    parse(text) -> Command                      text → intent with symbolic references
    resolve(cmd, flag) -> SemanticPatch         intent + flag document → instructions with IDs
    describe(patch, flag) -> list[str]          instructions → plain sentences
    canonical(cmd) -> str                       intent → canonical command text
    plan_request(cmd, flag, project=...)        the exact LaunchDarkly request
    help_text(topic) / examples()               from the registry the parser reads
"""

from commands.describe import describe
from commands.errors import CommandError, EngineRefusal, FlagopsError, ResolveError
from commands.help import help_text
from commands.intents import (
    ChangeCommand,
    Command,
    HelpCommand,
    ListCommand,
    RawCommand,
    ReservedCommand,
    Schedule,
    ShowCommand,
)
from commands.parse import parse, parse_duration
from commands.registry import Example, examples
from commands.render import canonical
from commands.request import PlannedRequest, plan_request
from commands.resolve import referenced_flags, resolve

__all__ = [
    "ChangeCommand",
    "Command",
    "CommandError",
    "EngineRefusal",
    "Example",
    "FlagopsError",
    "HelpCommand",
    "ListCommand",
    "PlannedRequest",
    "RawCommand",
    "ReservedCommand",
    "ResolveError",
    "Schedule",
    "ShowCommand",
    "canonical",
    "describe",
    "examples",
    "help_text",
    "parse",
    "parse_duration",
    "plan_request",
    "referenced_flags",
    "resolve",
]
