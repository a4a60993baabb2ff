"""The package's layout is the pipeline's: each stage imports only from the stages before it.

submission → sandbox → trainer → judge → batch → reports, with the base modules (errors, the
assignment's facts, limits, the atomic writer, safe text) below all and the entry points (cli, selfcheck,
demo, the notebook's check cells) above all. Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "autograder"
STAGES = ["base", "data", "submission", "sandbox", "trainer", "judge", "batch", "reports", "top"]
BASE = {"__init__", "errors", "assignment", "limits", "files", "config", "i18n", "text"}
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in BASE):
        return "base"
    return parts[1] if parts[1] in STAGES else "top"


def imported(path: Path) -> set[str]:
    """The kit's modules that ``path`` imports, as dotted names (a package counts as its __init__)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("autograder"))
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autograder") and not node.level
        ):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or (
                    PACKAGE.parent / candidate.replace(".", "/") / "__init__.py"
                ).exists()
                found.add(candidate if is_module else node.module)
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {dep for dep in imported(path) if dep in MODULES and dep != name} for name, path in MODULES.items()}


def test_every_module_belongs_to_a_known_stage():
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages <= set(STAGES), f"a package that is no stage: {sorted(packages - set(STAGES))}"


def test_imports_run_down_the_pipeline():
    upward = [
        f"{name} ({stage_of(name)}) imports {dep} ({stage_of(dep)})"
        for name, deps in GRAPH.items()
        for dep in deps
        if STAGES.index(stage_of(dep)) > STAGES.index(stage_of(name))
    ]
    assert not upward, "imports against the pipeline:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(GRAPH[name]):
            if state.get(dep) == "open":
                cycles.append(" → ".join(trail[trail.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, trail + [dep])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_400_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[name].relative_to(PACKAGE.parent)} has {lines} lines"


def test_package_modules_say_their_job():
    missing = [name for name, path in MODULES.items() if not ast.get_docstring(ast.parse(path.read_text()))
               and name != "autograder.__main__"]
    assert not missing, f"modules without a docstring: {missing}"


MAX_FUNCTION_LINES = 60


def test_no_function_is_over_60_lines():
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)
