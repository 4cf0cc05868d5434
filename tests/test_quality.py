"""The code base stays ruff-clean: checked by the suite so CI catches a regression."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_clean(args: list[str]) -> None:
    if shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists():
        pytest.fail("ruff is missing: install the 'dev' extra (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "src", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _module_imports(path: Path, name: str) -> set[str]:
    """matforge modules imported at module level by one file (not inside functions, not
    under `if TYPE_CHECKING:`), as dotted names; `from pkg import sub` counts as pkg.sub."""
    import ast

    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(child, ast.Import):
                found |= {a.name for a in child.names if a.name.startswith("matforge")}
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    base = ".".join(
                        parts[: len(parts) - child.level + 1] + ([base] if base else [])
                    )
                if base.startswith("matforge"):
                    found.add(base)
                    found |= {f"{base}.{a.name}" for a in child.names}
    return found


def test_no_import_cycles_between_matforge_modules() -> None:
    """A module-level import graph without cycles: a module never needs, while it is
    being imported, a module that needs it (package __init__ files re-export their
    submodules, so a submodule importing its own package counts as a cycle too)."""
    root = Path(__file__).resolve().parents[1] / "src"
    modules: dict[str, Path] = {}
    for path in (root / "matforge").rglob("*.py"):
        dotted = ".".join(path.relative_to(root).with_suffix("").parts)
        modules[dotted.removesuffix(".__init__")] = path
    graph = {
        name: {m for m in _module_imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, cycles[:5]
