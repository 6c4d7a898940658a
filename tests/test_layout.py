"""The package's shape: layers a reader can see, functions that fit a screen.

The checks read the source with ``ast`` (nothing is imported), so they are
cheap and fail with the module or function to fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cmisc_model"
MAX_TOP_MODULES = 10
MAX_FUNCTION_LINES = 80
MAX_OVER_60 = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def imported(tree: ast.Module, known: set[str]) -> set[str]:
    """The package's modules that ``tree`` imports, at module level or inside a function."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:  # `from pkg import module` names a module, `from module import x` does not
                out.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module)
    return {m for m in out if m in known}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle():
    trees = modules()
    known = set(trees)
    graph = {m: imported(t, known) - {m, "cmisc_model"} for m, t in trees.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_few_modules_at_the_top_and_every_package_says_what_lives_there():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 15, f"{init}: a docstring saying what the package holds"


def function_lengths() -> list[tuple[int, str]]:
    out = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name}"))
    return sorted(out, reverse=True)


def test_functions_fit_a_screen():
    lengths = function_lengths()
    too_long = [f"{f} ({n} lines)" for n, f in lengths if n > MAX_FUNCTION_LINES]
    assert not too_long, too_long
    over_60 = [f for n, f in lengths if n > 60]
    assert len(over_60) <= MAX_OVER_60, over_60
