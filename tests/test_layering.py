"""The architecture as the imports show it: layers only import downwards, no module imports a cycle, and no
module reaches into another module's private names. Parsed from the source (every import statement, those
inside functions included), so the layering cannot erode unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("algorithms", "theory", "experiments", "paper_figures")

#: Layer of a module (longest matching prefix) -> the layers it may import (itself included).
ALLOWED: dict[str, set[str]] = {
    "algorithms": {"algorithms"},
    "theory": {"algorithms", "theory"},
    "theory.simulators": {"algorithms", "theory", "theory.simulators"},
    "experiments": {"experiments.pipeline"},  # the package's lazy public names
    "experiments.distributed": {"algorithms", "experiments.distributed"},
    "experiments.pipeline": {"algorithms", "theory", "experiments.distributed", "experiments.pipeline"},
    "experiments.benchmarks": {
        "algorithms",
        "theory",
        "experiments.distributed",
        "experiments.pipeline",
        "experiments.benchmarks",
    },
    "experiments.cli": {
        "algorithms",
        "theory",
        "theory.simulators",
        "experiments",
        "experiments.distributed",
        "experiments.pipeline",
        "experiments.benchmarks",
        "experiments.cli",
        "paper_figures",
    },
    "paper_figures": {
        "algorithms",
        "theory",
        "theory.simulators",
        "experiments.pipeline",
        "experiments.benchmarks",
        "paper_figures",
    },
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[_module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


SOURCES = _sources()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name (without the ``robustdistill.`` prefix) of a ``from X import`` statement's X."""
    if node.level == 0:
        name = node.module or ""
        return name.removeprefix("robustdistill.") if name.startswith("robustdistill.") else ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _edges(module: str) -> list[tuple[str, str | None]]:
    """(imported module, imported private name or None) for every import of the package in ``module``."""
    path, tree = SOURCES[module]
    edges: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges += [
                (a.name.removeprefix("robustdistill."), None) for a in node.names if a.name.startswith("robustdistill.")
            ]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            if not target:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in SOURCES:  # `from package import module`
                    edges.append((sub, None))
                else:
                    edges.append((target, alias.name if alias.name.startswith("_") else None))
    return edges


def _layer(module: str) -> str:
    return max((layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")), key=len)


def test_the_sources_are_found():
    assert {"algorithms.rad", "theory.simulators", "experiments.pipeline.distill", "experiments.cli"} <= set(SOURCES)
    assert len(SOURCES) > 60


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_layers_import_only_downwards(module):
    own = _layer(module)
    bad = sorted({t for t, _ in _edges(module) if t in SOURCES and _layer(t) not in ALLOWED[own]})
    assert not bad, f"{module} ({own}) imports {bad}; {own} may import only {sorted(ALLOWED[own])}"


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_private_names_across_modules(module):
    """``from other import _name`` and ``other_alias._name`` are reserved to the module that defines the name."""
    path, tree = SOURCES[module]
    bad = sorted({f"{t}.{name}" for t, name in _edges(module) if name and t != module})
    aliases = {}
    for node in ast.walk(tree):  # names bound to modules of the package
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                if f"{target}.{alias.name}" in SOURCES:
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("robustdistill.") and alias.asname:
                    aliases[alias.asname] = alias.name.removeprefix("robustdistill.")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"{aliases[node.value.id]}.{node.attr}")
    assert not bad, f"{module} uses private names of other modules: {sorted(set(bad))}"


def test_no_import_cycle():
    graph = {m: sorted({t for t, _ in _edges(m) if t in SOURCES and t != m}) for m in SOURCES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")


def test_the_checks_catch_a_back_edge_and_a_cycle(monkeypatch):
    """The rules are live: a library module importing a simulator, and two modules importing each other, fail."""
    fake = ast.parse("from robustdistill.theory.simulators import rad_checks\nfrom . import distill\n")
    monkeypatch.setitem(SOURCES, "experiments.pipeline.fake", (ROOT / "experiments/pipeline/fake.py", fake))
    with pytest.raises(AssertionError, match="imports"):
        test_layers_import_only_downwards("experiments.pipeline.fake")
    cyc = ast.parse("from . import fake\n")
    monkeypatch.setitem(SOURCES, "experiments.pipeline.distill", (ROOT / "experiments/pipeline/distill.py", cyc))
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycle()
