"""The docs name what exists: modules, files and links are checked against the tree, and every
module of the package has its line in the architecture's map.

A newcomer reads README.md and docs/*.md before the code, so a module that moved, a link to a
page that is gone or a module added without a line in the map fails here, not in their hands.
Fast: the package is read as files and parsed, never imported (no TensorFlow).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autograder"
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_README_LINES = 150
MAP_HEADING = "## The modules"

# `autograder/sandbox/launch.py`, `autograder/sandbox/`; and `autograder.sandbox.launch.CHILD_MODULES`.
PATH = re.compile(r"(?<![\w./-])autograder/(?:[\w]+/)*(?:[\w]+\.py)?(?![\w/])")
DOTTED = re.compile(r"(?<![\w./-])autograder(?!\.toml\b)(?:\.\w+)+")  # autograder.toml: the config file
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A line of the map: "- `sandbox/launch.py`: its job" (a package as its folder, "- `sandbox/`: ...").
MAP_ENTRY = re.compile(r"^- `((?:\w+/)*(?:\w+\.py|\w+/))`", re.MULTILINE)


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def page_ids() -> list[str]:
    return [str(page.relative_to(ROOT)) for page in pages()]


def top_level_names(path: Path) -> set[str]:
    """Names a module defines at its top level: functions, classes, assignments, imports."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(name.id for target in targets for name in ast.walk(target)
                         if isinstance(name, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def dotted_problem(name: str) -> str | None:
    """Why ``name`` names nothing: its longest prefix that is a module must define the next part."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        found = module_file(parts[:end])
        if found is None:
            continue
        if end == len(parts) or parts[end] in top_level_names(found):
            return None
        return f"{'.'.join(parts[:end])} defines no {parts[end]!r}"
    return "no such module"


def missing_names(text: str) -> list[str]:
    problems = []
    for path in sorted(set(PATH.findall(text))):
        if not (ROOT / path).exists():
            problems.append(f"{path}: no such file or folder")
    for name in sorted(set(DOTTED.findall(text))):
        problem = dotted_problem(name)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        if not (page.parent / target.split("#")[0]).exists():
            problems.append(target)
    return problems


def module_map(text: str) -> str:
    start = text.index(MAP_HEADING)
    end = text.find("\n## ", start + len(MAP_HEADING))
    return text[start:] if end < 0 else text[start:end]


def map_entries(text: str) -> set[str]:
    return set(MAP_ENTRY.findall(module_map(text)))


def package_modules() -> set[str]:
    """Each module as the map names it: its path under autograder/, a package as its folder."""
    modules = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" and relative.parent != Path("."):
            modules.add(f"{relative.parent.as_posix()}/")
        else:
            modules.add(relative.as_posix())
    return modules


@pytest.mark.parametrize("page", pages(), ids=page_ids())
def test_every_module_and_path_a_page_names_exists(page):
    assert missing_names(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", pages(), ids=page_ids())
def test_every_relative_link_points_to_a_file(page):
    assert broken_links(page) == []


def test_every_module_has_its_line_in_the_architecture_map():
    missing = package_modules() - map_entries(ARCHITECTURE.read_text(encoding="utf-8"))
    assert not missing, f"docs/architecture.md's map has no line for {sorted(missing)}"


def test_every_module_the_map_names_exists():
    extra = map_entries(ARCHITECTURE.read_text(encoding="utf-8")) - package_modules()
    assert not extra, f"docs/architecture.md's map names modules that do not exist: {sorted(extra)}"


def test_the_readme_stays_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines; keep it to {MAX_README_LINES} and move the rest to docs/"
    )


def test_the_checks_catch_what_they_are_for(tmp_path):
    """Each check finds a name, a link and a module that are not there, so that an empty list
    above means something."""
    assert missing_names("`autograder/sandbox/nowhere.py`") == [
        "autograder/sandbox/nowhere.py: no such file or folder"
    ]
    assert missing_names("`autograder.judge.nowhere`") == [
        "autograder.judge.nowhere: autograder.judge defines no 'nowhere'"
    ]
    assert missing_names("`autograder.limits.Limits`, `autograder/limits.py`, `autograder/judge/`") == []
    assert dotted_problem("autograder.limits.NoSuchName") == "autograder.limits defines no 'NoSuchName'"
    text = "## The modules\n- `sandbox/`: x, see `tests/x.py`\n- `cli.py`: y\n## Next\n- `demo.py`: z"
    assert map_entries(text) == {"sandbox/", "cli.py"}
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("")
    page.write_text("[a](there.md#part) [b](gone.md) [c](https://example.org/x) [d](#here)")
    assert broken_links(page) == ["gone.md"]
