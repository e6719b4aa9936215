"""The shape of the code: no import cycles inside src/qabot, and the layers of the README.

Data flows one way: documents -> passages -> index -> search -> answer -> service ->
interfaces. Every module is parsed (not imported), and every import counts, including
imports inside functions: a cycle that only closes at run time is still a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lower layers: they never import the service or an interface.
LOWER = (
    "qabot.text",
    "qabot.lexicon",
    "qabot.ingest",
    "qabot.passages",
    "qabot.embedding",
    "qabot.encoder",
    "qabot.index",
    "qabot.query",
    "qabot.search",
    "qabot.answer",
)
SERVICE = "qabot.service"
INTERFACES = ("qabot.http", "qabot.telegram", "qabot.cli", "qabot.web")
# What an interface may import from qabot besides its own package: the service (which
# re-exports the types and errors interfaces use), the settings and the shared messages.
INTERFACE_MAY_IMPORT = ("qabot.service", "qabot.config", "qabot.messages")
# The command line starts the other interfaces (`qabot serve`, `qabot bot`) and runs
# evaluations; it may import them, but only inside the command that needs them.
CLI_MAY_IMPORT_LAZILY = ("qabot.http", "qabot.telegram", "qabot.web", "qabot.evaluation")
# Imported by every layer, so they import nothing from qabot themselves.
LEAVES = ("qabot.errors", "qabot.messages", "qabot.config")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the qabot module imported
    line: int
    lazy: bool  # inside a function


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "qabot").rglob("*.py"))}


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _function_lines(tree: ast.AST) -> set[int]:
    """Line numbers of imports that sit inside a function body."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    lines.add(inner.lineno)
    return lines


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lazy_lines = _function_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def add(target: str, line: int) -> None:
        # The deepest qabot module the import names: "qabot.index.store" for
        # "from qabot.index import store", "qabot.index" for "from qabot.index import X".
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.append(Import(name, target, line, line in lazy_lines))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, "qabot"):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            if not _within(origin, "qabot"):
                continue
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                add(candidate if candidate in known else origin, node.lineno)
    return found


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    found = modules()
    known = set(found)
    return [edge for name, path in found.items() for edge in imports_of(name, path, known)]


def find_cycle(edges: list[Import]) -> list[str] | None:
    targets: dict[str, set[str]] = {}
    for edge in edges:
        targets.setdefault(edge.source, set()).add(edge.target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(targets.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(targets):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def describe(edges: list[Import]) -> str:
    return "\n".join(f"{e.source} imports {e.target} (line {e.line})" for e in edges)


# --- the checker itself ------------------------------------------------------------------


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "qabot"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from qabot.sub import leaf\n")
    (package / "sub" / "leaf.py").write_text("def f():\n    from .. import top\n")
    (package / "top.py").write_text("import qabot.sub.leaf\nfrom qabot.sub import leaf as x\n")
    known = {"qabot", "qabot.sub", "qabot.sub.leaf", "qabot.top"}
    edges = [e for name in sorted(known) for e in imports_of(name, _path(tmp_path, name), known)]
    pairs = {(e.source, e.target, e.lazy) for e in edges}
    assert pairs == {
        ("qabot.sub", "qabot.sub.leaf", False),
        ("qabot.sub.leaf", "qabot.top", True),
        ("qabot.top", "qabot.sub.leaf", False),
    }
    assert find_cycle(edges) == ["qabot.sub.leaf", "qabot.top", "qabot.sub.leaf"]


def _path(root: Path, name: str) -> Path:
    base = root.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


# --- the rules ---------------------------------------------------------------------------


def test_no_import_cycles(graph: list[Import]) -> None:
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_lower_layers_never_import_the_service_or_an_interface(graph: list[Import]) -> None:
    upward = [
        e for e in graph if _within(e.source, LOWER) and _within(e.target, (SERVICE, *INTERFACES))
    ]
    assert not upward, describe(upward)


def test_interfaces_never_import_each_other(graph: list[Import]) -> None:
    def interface_of(module: str) -> str | None:
        return next((i for i in INTERFACES if _within(module, i)), None)

    crossing = []
    for edge in graph:
        source, target = interface_of(edge.source), interface_of(edge.target)
        if source is None or target is None or source == target:
            continue
        if source == "qabot.cli" and edge.lazy:
            continue  # the command line launching an interface (see CLI_MAY_IMPORT_LAZILY)
        crossing.append(edge)
    assert not crossing, describe(crossing)


def test_interfaces_reach_qabot_only_through_the_service(graph: list[Import]) -> None:
    stray = []
    for edge in graph:
        own = next((i for i in INTERFACES if _within(edge.source, i)), None)
        if own is None or _within(edge.target, (own, *INTERFACE_MAY_IMPORT)):
            continue
        if own == "qabot.cli" and edge.lazy and _within(edge.target, CLI_MAY_IMPORT_LAZILY):
            continue
        stray.append(edge)
    assert not stray, describe(stray)


def test_shared_leaves_import_nothing_from_qabot(graph: list[Import]) -> None:
    leaking = [e for e in graph if _within(e.source, LEAVES)]
    assert not leaking, describe(leaking)


def test_every_module_is_seen(graph: list[Import]) -> None:
    names = set(modules())
    assert {"qabot.service", "qabot.http.app", "qabot.telegram.webhook", "qabot.cli"} <= names
    assert "qabot.api" not in names  # the HTTP API is the qabot.http package
    sources = {e.source for e in graph}
    assert {"qabot.service", "qabot.http.routes", "qabot.telegram.app"} <= sources
