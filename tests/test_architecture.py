"""The shape of the code, checked: no import cycle among ``bot`` and ``commands`` modules (every
import counts: top level, inside functions, under ``TYPE_CHECKING``), serving Slack never loads the
offline parts, and ``bot/`` keeps its modules in feature folders."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/**/*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules it imports (a package's ``__init__`` counts for its name)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                found = known(target)
                if found and found != module and not module.startswith(found + "."):
                    graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_bot_and_commands() -> None:
    graph = import_graph()
    assert len(graph) > 80 and "bot.lifecycle.service" in graph["bot.wiring"]
    assert cycles(graph) == []


def test_the_graph_sees_a_cycle_when_there_is_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_serving_slack_loads_nothing_offline() -> None:
    code = (
        "import sys\n"
        "import bot.__main__\n"
        "from bot.slack.server import run_server\n"
        "from bot.scheduling.scheduler import run_clock\n"
        "from bot.slack.server import create_web_app\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bot.offline', 'tests'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_bot_keeps_at_most_eight_modules_at_its_top() -> None:
    top = sorted(p.name for p in (ROOT / "bot").glob("*.py"))
    assert len(top) <= 8, top


# Slack's libraries, and the HTTP client slack_sdk speaks through. Outside ``bot/slack`` only a
# feature's ``listeners.py`` (the Bolt decorators and ``ack``) may name Bolt; nothing but
# ``bot/slack`` and the offline tools (a fake Slack, a driver) may name slack_sdk or aiohttp.
_SLACK_LIBRARIES = ("slack_sdk", "slack_bolt", "aiohttp")


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_slack_package_speaks_to_slack() -> None:
    offenders = {}
    for module, path in _modules().items():
        if module.startswith(("bot.slack", "bot.offline")):
            continue
        allowed = {"slack_bolt"} if path.name.endswith("listeners.py") else set()
        wrong = (_imported_roots(path) & set(_SLACK_LIBRARIES)) - allowed
        if wrong:
            offenders[module] = sorted(wrong)
    assert offenders == {}


def test_no_service_is_patched_after_it_is_built() -> None:
    # The lifecycle's collaborators are constructor arguments (bot.wiring): no module assigns them.
    patched = re.compile(r"\.(changes|approvals|guard|channel_defaults|verbs|verb_handlers)\s*=[^=]")
    found = [
        f"{module}: {line.strip()}"
        for module, path in _modules().items()
        for line in path.read_text().splitlines()
        if patched.search(line) and not line.lstrip().startswith("self.")
    ]
    assert found == []
