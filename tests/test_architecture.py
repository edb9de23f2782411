"""The package tree is the architecture: no import cycle, no lower layer importing a higher one.

Read from the source (``ast``), every import counts, including the lazy ones inside functions:
a cycle hidden behind a function-level import is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "mlship"
# What each part of the package may import (besides itself). ``cli`` is the top: nothing
# imports it but its own modules.
ALLOWED: dict[str, set[str]] = {
    "version": set(),  # mlship/__init__.py: the package version, nothing else
    "errors": set(),
    "storage": {"errors"},
    "config": {"errors"},
    "model": {"errors", "storage", "version"},
    "scoring": {"errors", "model"},
    "serving": {"errors", "model", "scoring", "version"},
    "batch": {"errors", "storage", "model", "scoring"},
    "registry": {"errors", "config", "storage", "model", "scoring"},
    "training": {"errors", "config", "storage", "model", "scoring", "registry"},
    "deploy": {"errors", "config", "storage", "model", "scoring", "registry", "version"},
    "monitoring": {"errors", "config", "storage", "model", "scoring", "registry", "training"},
    "cli": {"*"},
}
# The one way up: the service's live drift gauges (``serving.metrics``) come from monitoring's
# window counting, which itself imports only what serving may (checked below).
EXCEPTIONS = {("serving", "mlship.monitoring.live")}
LIVE_DRIFT = ("mlship.monitoring.live", "mlship.monitoring.window")


def part_of(module: str) -> str:
    """``mlship.scoring.predictor`` -> ``scoring``; ``mlship`` itself (the version) -> version."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "version"


def module_name(path: Path) -> str:
    relative = path.relative_to(SRC.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute_imports(path: Path) -> Iterator[tuple[str, list[str] | None]]:
    """Each absolute import in a file: ``import a.b`` as ("a.b", None), ``from a import b, c``
    as ("a", ["b", "c"])."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def imports_of(path: Path) -> set[str]:
    """Every ``mlship...`` module a file imports, resolved to module names."""
    found: set[str] = set()
    for module, names in absolute_imports(path):
        if module.split(".")[0] != "mlship":
            continue
        for name in names or [None]:  # `from mlship.x import y` may name a module y
            candidate = f"{module}.{name}" if name else module
            found.add(candidate if module_file(candidate) else module)
    return found


def module_file(name: str) -> Path | None:
    base = SRC.parent.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong = []
    for module, imported in graph().items():
        allowed = ALLOWED[part_of(module)]
        for target in imported:
            owner = part_of(target)
            if (part_of(module), target) in EXCEPTIONS:
                continue
            if owner != part_of(module) and "*" not in allowed and owner not in allowed:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_live_drift_imports_only_what_serving_may() -> None:
    found = graph()
    imported = {t for m in LIVE_DRIFT for t in found[m]} - set(LIVE_DRIFT)
    assert {part_of(t) for t in imported} <= ALLOWED["serving"], imported


def test_nothing_outside_cli_imports_cli() -> None:
    offenders = [
        module
        for module, imported in graph().items()
        if part_of(module) != "cli" and any(part_of(t) == "cli" for t in imported)
    ]
    assert offenders == []


def test_onnxruntime_is_imported_in_one_place() -> None:
    """``scoring.backends.onnxruntime()`` turns its telemetry off before the first import; any
    other import could come first and leave it on."""
    importers = {
        module_name(p): n
        for p in SRC.rglob("*.py")
        if (n := sum(m.split(".")[0] == "onnxruntime" for m, _ in absolute_imports(p)))
    }
    assert importers == {"mlship.scoring.backends": 1}


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (first == last), or [] when there is none."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if state.get(nxt) is None and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return []

    for start in sorted(edges):
        if state.get(start) is None and (found := visit(start, [start])):
            return found
    return []


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle() -> None:
    edges = {m: {t for t in targets if t != m} for m, targets in graph().items()}
    # A package's __init__ importing its own submodules is assembly, not a cycle.
    for module, targets in edges.items():
        edges[module] = {t for t in targets if not t.startswith(module + ".")}
    assert find_cycle(edges) == []


def test_every_part_is_known() -> None:
    assert {part_of(m) for m in graph()} <= set(ALLOWED) | {"version"}


@pytest.mark.parametrize("limit", [300])
def test_modules_stay_small(limit: int) -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > limit} == {}
