"""The pure core reaches no clock, randomness, I/O or concurrency.

One check over the import graph: start at `exchange.core`, follow every import
(top level, inside functions and under ``TYPE_CHECKING`` alike) through the
modules of this repository, and refuse any module that imports something
impure. It holds however the code moves, because it follows the imports, not
a list of files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE_ENTRY = "exchange.core"

# Whole top-level packages the core must never import.
FORBIDDEN_TOP = frozenset({
    "asyncio", "concurrent", "datetime", "io", "logging", "multiprocessing", "os",
    "pathlib", "random", "secrets", "selectors", "shutil", "signal", "socket",
    "structlog", "subprocess", "sys", "tempfile", "threading", "time", "uuid",
    "clients", "replay", "bench", "tests",
})  # fmt: skip
# Parts of this repository that are shell, not core.
FORBIDDEN_OWN = ("exchange.journal", "exchange.shell", "exchange.cli", "exchange.logs")
# Calls that read a clock or draw randomness even through an allowed import.
FORBIDDEN_CALLS = frozenset({"now", "utcnow", "today", "time_ns", "perf_counter"})


def _module_file(name: str) -> Path | None:
    """Return the source file of a module of this repository, else None."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolve(module: str | None, level: int, importer: str) -> str:
    """Return the absolute module name of a (possibly relative) import."""
    if level == 0:
        return module or ""
    package = importer.split(".")[: -level or None]
    return ".".join([*package, module] if module else package)


def _imports(name: str, tree: ast.Module) -> list[str]:
    """Return every module name ``tree`` imports, submodules of packages included."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, name)
            found.append(base)
            # ``from exchange.engine import book`` imports a module too.
            found += [
                f"{base}.{alias.name}"
                for alias in node.names
                if _module_file(f"{base}.{alias.name}") is not None
            ]
    return found


def _impurities(name: str, tree: ast.Module) -> list[str]:
    """Return what makes one module impure, as readable findings."""
    problems = [
        f"{name} imports {imported}"
        for imported in _imports(name, tree)
        if imported.split(".")[0] in FORBIDDEN_TOP or imported.startswith(FORBIDDEN_OWN)
    ]
    problems += [
        f"{name} calls {node.func.attr}() (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FORBIDDEN_CALLS
    ]
    return problems


def reached_from(entry: str) -> dict[str, ast.Module]:
    """Return the parsed modules of this repository that ``entry`` reaches."""
    reached: dict[str, ast.Module] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in reached or path is None or name == "exchange":
            continue  # seen, outside the repo, or the root that exports the facade
        reached[name] = ast.parse(path.read_text(), str(path))
        todo += _imports(name, reached[name])
        todo.append(name.rpartition(".")[0])  # importing a module runs its package
    return reached


def impurities(entry: str) -> list[str]:
    """Return every impurity in what ``entry`` reaches (empty when pure)."""
    return [
        problem
        for name, tree in sorted(reached_from(entry).items())
        for problem in _impurities(name, tree)
    ]


def test_the_core_reaches_the_engine_and_the_margin_ledger():
    """The walk follows the core's imports into the engine and the margin ledger."""
    reached = reached_from(CORE_ENTRY)
    assert {
        "exchange.core",
        "exchange.messages",
        "exchange.engine.matching",
        "exchange.engine.orders",
        "exchange.margin.ledger",
        "exchange.margin.liquidation",
        "exchange.margin.funding",
    } <= reached.keys()


def test_nothing_the_core_reaches_is_impure():
    """No module the core reaches imports a clock, randomness, I/O or the shell."""
    assert impurities(CORE_ENTRY) == []


def _package_imports(package: str) -> dict[str, list[str]]:
    """Return each module of ``package`` (a folder here) and what it imports."""
    folder = ROOT.joinpath(*package.split("."))
    found = {}
    for path in sorted(folder.glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        found[name] = _imports(name, ast.parse(path.read_text(), str(path)))
    return found


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("exchange.engine", ("exchange.margin", "exchange.core", "exchange.resting")),
        ("exchange.margin", ("exchange.engine", "exchange.core", "exchange.resting")),
    ],
)
def test_the_engine_and_the_ledger_meet_only_in_the_core(package, never):
    """The engine and the margin ledger never import each other, nor the core.

    Each states what it needs of the other as a protocol (`RiskGate`;
    `Quotes`, `HeldOrder`, `LiquidationOrders`); the core wires them together.
    """
    modules = _package_imports(package)
    assert len(modules) > 3  # the walk found the package's modules
    crossings = [
        f"{name} imports {imported}"
        for name, imports in modules.items()
        for imported in imports
        if imported.startswith(never)
    ]
    assert crossings == []


@pytest.mark.parametrize(
    ("source", "finding"),
    [
        ("import time\n", "imports time"),
        ("from datetime import datetime\n", "imports datetime"),
        ("def f():\n    import random\n", "imports random"),
        ("from exchange.journal import MemoryJournal\n", "imports exchange.journal"),
        ("from . import shell\n", "imports exchange.shell"),
        ("x = clock.now()\n", "calls now()"),
    ],
)
def test_an_impure_module_is_reported(source, finding):
    """Each kind of impurity in a module is found, also in a function body."""
    problems = _impurities("exchange.sample", ast.parse(source))
    assert any(finding in problem for problem in problems), problems
