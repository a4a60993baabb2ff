"""Read an assignment notebook and load the functions it defines, without running its lesson.

Loading runs the set-up and solution cells, and the definitions of the other cells
(``autograder.submission.cells``), in order, in a fresh namespace: the calls that load data, train
for 30 epochs or draw plots never run, so loading takes as long as the imports.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import contextlib
import errno
import json
import linecache
import os
import re
import stat
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat

from autograder.assignment import FUNCTIONS
from autograder.errors import MissingFunctionError, NotebookError, TimeLimitExceeded
from autograder.i18n import _
from autograder.limits import exception_words, not_the_student_s, time_limit
from autograder.submission.cells import (
    DEFINITIONS,
    bound_names,
    cell_role,
    cell_source,
    definitions_of,
    imported_names,
    parse_python,
    without_magics,
)
from autograder.submission.paths import open_submitted

MAX_NOTEBOOK_BYTES = 64 * 1024**2
# Lists and objects in one another: Jupyter writes about 10 (widgets' state, a plot's layout), and
# what reads a notebook afterwards recurses per level (nbformat's from_dict twice).
MAX_NOTEBOOK_DEPTH = 64
# Python's parser takes about 1 GB of memory per MB of dense code, and the grader parses every code
# cell in its own process: the lesson's notebook has some 45 cells and 10 KiB of code.
MAX_CELLS = 1000
MAX_CODE_CHARS = 256 * 1024
MAX_CELL_CODE_CHARS = 64 * 1024  # one long f-string takes Python's parser quadratic time
# What json, then nbformat, build in the grader's own process: about 500 bytes for each JSON object
# or list (the 3 bytes of ``{},``), about 100 for a value in a list (the 5 of ``"Ā",``); the lesson's
# notebook has some 200 objects and lists and 600 values. They are counted in the raw text, strings
# aside, before anything is built: up to each next ``{``, ``[`` or ``,`` outside a string, one match
# after another (linear, nothing copied). A string that never closes runs to the end of the text, which
# is then no JSON: tried again from each of its quotes, it made the count quadratic.
MAX_NOTEBOOK_CONTAINERS = 100_000
MAX_NOTEBOOK_VALUES = 1_000_000
_UP_TO_ITEM = re.compile(rb'(?:[^"{\[,]++|"(?:[^"\\]++|\\.)*+(?:"|\Z))*+[{\[,]', re.S)


def read_submitted_bytes(path: Path) -> bytes:
    """The file's bytes, read from one descriptor opened without following a link a student could
    have made or swapped (``open_submitted``) and checked to be a regular file of at most
    ``MAX_NOTEBOOK_BYTES`` (a FIFO would block, a device never end)."""
    try:
        handle = open_submitted(path)
    except FileNotFoundError:
        raise NotebookError(path, _("no such file")) from None
    except OSError as error:
        if error.errno == errno.ELOOP and os.path.islink(path):
            raise NotebookError(path, _("is a link, not a notebook: submit the .ipynb file itself")) from None
        if error.errno == errno.ELOOP:
            raise NotebookError(path, _(
                "is reached through a link that someone other than the grader could have made or changed: "
                "grade the folder the notebook is really in"
            )) from None
        if error.errno == errno.EMLINK:
            raise NotebookError(path, _(
                "is another user's file linked into this folder, not a notebook of the folder's owner: submit the "
                ".ipynb file itself"
            )) from None
        raise NotebookError(path, _("cannot be read ({reason})").format(reason=error.strerror)) from None
    status = os.fstat(handle)
    if not stat.S_ISREG(status.st_mode):  # before fdopen, which refuses a folder and leaves it open
        os.close(handle)
        if stat.S_ISDIR(status.st_mode):
            raise NotebookError(path, _("is a folder, not a notebook"))
        raise NotebookError(path, _("is not a regular file: submit the .ipynb file Jupyter saved"))
    with os.fdopen(handle, "rb") as file:
        raw = file.read(MAX_NOTEBOOK_BYTES + 1)
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(
            path,
            _("the file is larger than {mib} MiB (huge outputs?): clear the outputs (Kernel → Restart & Clear "
              "Output), save and submit again").format(mib=MAX_NOTEBOOK_BYTES // 1024**2),
        )
    return raw


def read_notebook(path: str | Path, raw: bytes | None = None) -> nbformat.NotebookNode:
    """Read a notebook file, with an error that says what is wrong with it when it is not one.
    ``raw``: its bytes, read already (``read_submitted_bytes``): what is graded is what was read once."""
    path = Path(path)
    try:
        raw = read_submitted_bytes(path) if raw is None else raw
    except OSError as error:
        raise NotebookError(path, _("cannot be read ({reason})").format(reason=error.strerror)) from None
    if not raw.strip():
        raise NotebookError(path, _("the file is empty: save the notebook in Jupyter and submit it again"))
    if too_many_items(raw):
        raise NotebookError(path, _(
            "its JSON holds more objects, lists and values than a notebook of this lesson can need: clear the "
            "outputs (Kernel → Restart & Clear Output), save and submit again"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookError(
            path, _("not a text file (it is not UTF-8): submit the .ipynb file Jupyter saved")
        ) from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookError(
            path,
            _("not valid JSON (line {line}, column {column}: {error}); the file was damaged or is not a notebook: "
              "submit the .ipynb file Jupyter saved").format(line=error.lineno, column=error.colno, error=error.msg),
        ) from None
    except RecursionError:
        raise NotebookError(
            path,
            _("its JSON is nested too deeply to be a notebook Jupyter saved: submit the .ipynb file Jupyter saved"),
        ) from None
    if not isinstance(content, dict) or "cells" not in content:
        raise NotebookError(path, _("valid JSON but not a Jupyter notebook (it has no list of cells)"))
    if deeper_than(content, MAX_NOTEBOOK_DEPTH):
        raise NotebookError(
            path,
            _("its JSON is nested too deeply to be a notebook Jupyter saved: submit the .ipynb file Jupyter saved"),
        )
    version = content.get("nbformat")
    if version != 4:
        raise NotebookError(
            path,
            _("notebook format version {version}; this kit reads format 4 (any Jupyter since 2015 writes it)").format(
                version=repr(version)),
        )
    if not isinstance(content["cells"], list) or not all(
        isinstance(cell, dict) and "cell_type" in cell and "source" in cell for cell in content["cells"]
    ):
        raise NotebookError(path, _("the notebook's cells are malformed (each needs a cell_type and a source)"))
    check_cells(path, content["cells"])
    return nbformat.from_dict(content)


def too_many_items(raw: bytes) -> bool:
    """Whether the JSON text holds more than ``MAX_NOTEBOOK_CONTAINERS`` objects and lists or more than
    ``MAX_NOTEBOOK_VALUES`` values in lists and objects (braces and commas inside strings are text)."""
    step, containers, values = _UP_TO_ITEM.scanner(raw).match, 0, 0
    while (match := step()) is not None:
        if raw[match.end() - 1] == ord(","):
            values += 1
        else:
            containers += 1
        if containers > MAX_NOTEBOOK_CONTAINERS or values > MAX_NOTEBOOK_VALUES:
            return True
    return False


def check_cells(path: Path, cells: list) -> None:
    """The cells' fields as Jupyter writes them, and code within what the lesson needs: what reads a
    notebook after this (sanitize, the start order, the lint notes, all in the grader's process) may
    rely on both."""
    if len(cells) > MAX_CELLS:
        raise NotebookError(path, _(
            "the notebook has {count} cells, more than the {limit} a notebook of this lesson can need: submit "
            "the notebook of the lesson").format(count=len(cells), limit=MAX_CELLS))
    code = 0
    for number, cell in enumerate(cells, 1):
        metadata, source = cell.get("metadata", {}), cell["source"]
        fields = {
            "metadata": isinstance(metadata, dict),
            "tags": not isinstance(metadata, dict) or _strings(metadata.get("tags", [])),
            "nbgrader": not isinstance(metadata, dict) or isinstance(metadata.get("nbgrader", {}), dict),
            "source": isinstance(source, str) or _strings(source),
        }
        wrong = next((field for field, right in fields.items() if not right), None)
        if wrong:
            raise NotebookError(path, _(
                "cell {number} is malformed: its {field} is not what Jupyter writes; submit the .ipynb file "
                "Jupyter saved").format(number=number, field=wrong))
        text = cell_source(cell)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise NotebookError(path, _(
                "cell {number} holds text that is not valid Unicode: submit the .ipynb file Jupyter saved"
            ).format(number=number)) from None
        if cell.get("cell_type") != "code":
            continue
        if len(text) > MAX_CELL_CODE_CHARS:
            raise NotebookError(path, _(
                "cell {number} holds {size} KiB of code, more than the {limit} KiB one cell of this lesson can "
                "need: remove pasted data from it").format(
                    number=number, size=len(text) // 1024, limit=MAX_CELL_CODE_CHARS // 1024))
        code += len(text)
    if code > MAX_CODE_CHARS:
        raise NotebookError(path, _(
            "its code cells hold {size} KiB of code, more than the {limit} KiB a notebook of this lesson can "
            "need: remove pasted data from its code cells").format(size=code // 1024, limit=MAX_CODE_CHARS // 1024))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def deeper_than(value, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` deep in ``value`` (parsed JSON), without recursing."""
    pending = [(value, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                pending.append((child, depth + 1))
    return False


@dataclass
class LoadedNotebook:
    """What running a notebook's set-up and solution cells produced."""

    path: Path
    namespace: dict[str, Any]
    # Solution cells that failed, each as a message naming the cell; their functions are missing.
    cell_errors: list[str] = field(default_factory=list)

    def function(self, name: str) -> Callable | None:
        value = self.namespace.get(name)
        return value if callable(value) else None

    @property
    def missing(self) -> list[str]:
        return [name for name in FUNCTIONS if self.function(name) is None]


def run_cells(
    path: str | Path, nb: nbformat.NotebookNode | None = None, *, cell_seconds: float | None = None
) -> LoadedNotebook:
    """Run the set-up and solution cells of a notebook, and the definitions of its other code cells
    that are not the instructor's, in a fresh namespace.

    A failing set-up cell is fatal (nothing else can run without the imports) and raises
    NotebookError. The statements of other cells run one at a time: a failure is recorded and the
    definitions after it, and the other cells, still run, so one broken function costs only its own
    checks. ``cell_seconds`` stops a cell that runs too long.
    """
    path = Path(path)
    nb = read_notebook(path) if nb is None else nb
    # Jupyter's own name beside the builtins: a graded run shows nothing.
    namespace: dict[str, Any] = {"__name__": "__notebook__", "__builtins__": builtins, "display": _display}
    loaded = LoadedNotebook(path, namespace)
    imported, compiler = imported_names(nb.cells), codeop.Compile()
    for index, cell in enumerate(nb.cells, start=1):
        role = cell_role(cell)
        if role is None:
            continue
        setup, added = role == "setup", role == "added"
        source = definitions_of(cell_source(cell), imported) if added else without_magics(cell_source(cell))
        if not source:
            continue
        number, filename = cell_place(cell, index, path.name)
        # Named by the functions it defines (found by text: a cell with a syntax error has no AST).
        names = [n for n in re.findall(r"^def\s+(\w+)", source, flags=re.MULTILINE) if n in FUNCTIONS]
        label = (_("cell {index} ({names})").format(index=number, names=", ".join(f"`{n}`" for n in names)) if names
                 else _("cell {index}").format(index=number))
        # Registered so that tracebacks and inspect.getsource can show the student's own lines.
        linecache.cache[filename] = (len(source), None, [line + "\n" for line in source.split("\n")], filename)
        unassigned: list[str] = []
        try:
            with warnings.catch_warnings(), time_limit(cell_seconds), figures_closed_after():
                warnings.simplefilter("ignore")  # a student's warnings are theirs to read in Jupyter
                # A solution cell's every failure is the student's to read; an added cell's assignments fail quietly.
                execute(source, filename, namespace, one_by_one=not setup, raised=DEFINITIONS if added else (ast.stmt,),
                        compiler=compiler, unassigned=unassigned)
        except BaseException as error:  # sys.exit() in a cell must not end the grader
            if not_the_student_s(error) and not isinstance(error, TimeLimitExceeded):
                raise
            undefined = [name for name in unassigned if name not in namespace and name != "*"]
            problem = cell_problem(label, error, cell_seconds, setup, undefined)
            if setup:
                raise NotebookError(path, _("the set-up {problem}").format(problem=problem)) from None
            loaded.cell_errors.append(problem)
    return loaded


def cell_problem(label: str, error: BaseException, cell_seconds: float | None, setup: bool,
                 unassigned: list[str]) -> str:
    """What a cell's failure is, for the student: ``unassigned``, the names its failed statements left
    undefined, which a function that uses one then names."""
    if isinstance(error, TimeLimitExceeded):
        return _("{cell} ran longer than {seconds} s and was stopped (an endless loop?)").format(
            cell=label, seconds=f"{cell_seconds:g}")
    if isinstance(error, SyntaxError):
        return _("{cell} has a syntax error on line {line}: {error}").format(
            cell=label, line=error.lineno, error=error.msg)
    name, message = exception_words(error)
    problem = _("{cell} raised {error}").format(cell=label, error=f"{name}: {message}" if message else name)
    if isinstance(error, NameError) and not setup:  # defined in Jupyter, by a cell grading does not run
        problem += _(" (grading runs the solution cells without the lesson's other cells, its data among "
                     "them: what a function uses must be one of its arguments or made inside it)")
    if unassigned:
        problem += _("; so {names} stayed undefined").format(names=", ".join(map(repr, unassigned)))
    return problem


def cell_place(cell, index: int, notebook: str) -> tuple[int, str]:
    """A cell's number in the student's notebook, which messages name, and its file name for linecache,
    one per cell. The number is ``index`` in a notebook as the student wrote it, or the one ``sanitize``
    wrote into a cell it took: grading runs the student's cells in another order, after the instructor's
    set-up cells, which have none."""
    own = cell.get("metadata", {}).get("autograder")
    number = own.get("cell") if isinstance(own, dict) else index
    if type(number) is int and number > 0:
        return number, f"<{notebook} cell {number}>"
    return index, f"<{notebook} set-up cell {index}>"


@contextlib.contextmanager
def figures_closed_after():
    """As Jupyter's inline backend does after each cell: the figures a cell opened are shown, then
    closed (``fig, ax = plt.subplots()`` in a student's cell leaves none open for the probes)."""
    pyplot = sys.modules.get("matplotlib.pyplot")  # loading never imports it for this
    before = set(pyplot.get_fignums()) if pyplot else set()
    try:
        yield
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        for number in set(pyplot.get_fignums()) - before if pyplot else ():
            pyplot.close(number)


def execute(source: str, filename: str, namespace: dict, *, one_by_one: bool = False,
            raised: tuple[type[ast.stmt], ...] = DEFINITIONS, compiler: codeop.Compile | None = None,
            unassigned: list[str] | None = None) -> None:
    """Run a cell's code, its magics left out already (read twice, a cell might not read alike: the
    grader's reading is the child's). ``one_by_one``: each statement on its own, as far as they go. Grading never
    loads the lesson's data, so a statement that reads it (``X_new = X_test[:3]`` above a ``def``)
    fails where it worked in Jupyter; the definitions after it still run. The first failure of a
    statement of the kinds ``raised`` is raised at the end, so that the student reads why.
    ``compiler``: the notebook's, which keeps a ``from __future__`` import for the cells after it, as
    IPython's does; never this module's own flags. ``unassigned`` gets the names the statements that
    failed would have bound."""
    compiler = compiler or codeop.Compile()
    tree = parse_python(source)  # Python's own words for a syntax error (codeop's parser says "incomplete input")
    code = compiler(tree, filename, "exec")  # whole first, as Jupyter: a `return` outside a function fails it all
    if not one_by_one:
        exec(code, namespace)
        return
    failed = None
    for statement in tree.body:
        try:
            exec(compiler(ast.Module(body=[statement], type_ignores=[]), filename, "exec"), namespace)
        except BaseException as error:
            if not_the_student_s(error):
                raise
            if failed is None and isinstance(statement, raised):
                failed = error
            if unassigned is not None:
                unassigned.extend(name for name in bound_names(statement) if name not in unassigned)
    if failed is not None:
        raise failed


def _display(*objects, **options) -> None:
    """IPython's ``display``, which Jupyter puts among the builtins, shows nothing where nobody looks."""


def load_functions(path: str | Path, names: tuple[str, ...] = FUNCTIONS) -> dict[str, Callable]:
    """Load the named contract functions from a notebook, or raise an error naming the missing ones."""
    loaded = run_cells(path)
    missing = [name for name in names if loaded.function(name) is None]
    if missing:
        raise MissingFunctionError(path, missing, loaded.cell_errors)
    return {name: loaded.function(name) for name in names}
