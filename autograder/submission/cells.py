"""Which code of a notebook runs: its set-up cells, its solution cells, and the definitions of its
other cells.

A notebook that follows the contract has set-up cells (tagged ``setup``: imports, ``CLASS_NAMES``,
the seed) and one solution cell per function (nbgrader metadata ``solution: true``). A cell that
defines a contract function counts as a solution cell even when its nbgrader metadata is gone (some
editors strip metadata), so a student is never marked down for that. Of the student's other cells
only definitions run (``definitions_of``): in Jupyter the student ran them before the functions that
use them, and their calls are the lesson's, which never count.
"""

from __future__ import annotations

import ast
import builtins
import collections
import functools
import io
import re
import textwrap
import threading
import tokenize

from autograder.assignment import FUNCTIONS

SETUP_TAG = "setup"


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


_parsing = threading.Lock()
# Each cell's tree or SyntaxError, the latest first out: ordering, sanitizing and linting read a cell
# about ten times, and a 64 KiB f-string takes Python's parser a second. Bounded by the text they
# come from, one notebook's code at most (notebook.MAX_CODE_CHARS): about 75 MiB of trees.
_TREES: collections.OrderedDict[str, ast.Module | SyntaxError] = collections.OrderedDict()
_TREES_CHARS = 256 * 1024
_trees_chars = 0


def parse_cell(source: str) -> ast.Module:
    """A cell's code, its magics left out (``without_magics``), as Python parses it (``parse_python``)."""
    return parse_python(without_magics(source))


def parse_python(python: str) -> ast.Module:
    """Python's tree of ``python``, parsed one thread at a time: CPython 3.11 keeps ast.parse's
    recursion count in state the threads share, and two workers parsing at once can fail with
    "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905).
    Raises SyntaxError, also for code nested too deeply, which Python's parser gives up on with
    RecursionError or MemoryError: to every reader of cells it is code that does not parse.
    The tree is shared by the readers of the same text, which never change it."""
    global _trees_chars
    with _parsing:
        parsed = _TREES.pop(python, None)
        if parsed is None:
            parsed, _trees_chars = _parsed(python), _trees_chars + len(python)
        _TREES[python] = parsed
        while _trees_chars > _TREES_CHARS and len(_TREES) > 1:
            _trees_chars -= len(_TREES.popitem(last=False)[0])
    if isinstance(parsed, SyntaxError):
        raise type(parsed)(*parsed.args)  # a new one each time: a raised exception collects tracebacks
    return parsed


def _parsed(python: str) -> ast.Module | SyntaxError:
    try:
        return ast.parse(python)
    except SyntaxError as error:  # IndentationError too, kept as such
        return error.with_traceback(None)
    except (RecursionError, MemoryError) as error:
        return SyntaxError(f"code nested too deeply for Python to read ({type(error).__name__})")
    except ValueError as error:  # a null byte, text that is not Unicode
        return SyntaxError(str(error))


def defined_functions(source: str) -> set[str]:
    """Names of the contract functions a cell defines at its top level (none if it does not parse)."""
    try:
        tree = parse_cell(source)
    except SyntaxError:
        return set()
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in FUNCTIONS
    }


def is_setup_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def is_solution_cell(cell: dict) -> bool:
    if cell.get("cell_type") != "code":
        return False
    if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
        return True
    return bool(defined_functions(cell_source(cell)))


# Help asked after a name, which IPython sees only where Python's line ends (``a?`` then U+2028 is no help).
_ASKED_AFTER = r"[\w.]+(\[-?[0-9]+\][\w.]*)*(\(\))?\?{1,2}"
_HELP_AFTER = re.compile(rf"\s*{_ASKED_AFTER}\s*")
# IPython's help: ``keras.optimizers.SGD?``, ``model.fit??``, ``?np.argmax``, ``%%time?``.
_HELP = re.compile(rf"\s*(\?{{1,2}}[\w.]+|%{{0,2}}{_ASKED_AFTER})\s*")
_CELL_MAGIC_HELP = re.compile(r"%%\w+\?")  # help on a cell magic (``%%time?``), not a cell magic
# ``%time`` runs its code and gives its value.
_TIMED = re.compile(r"%time (?=\s*\S)\s*")  # IPython parts a magic's name from its code at a space
_TIMED_NEXT_LINE = re.compile(r"(%time +)*%time *\\")  # ``%time \``: IPython times the line it joins
# Python 3.11's tokenizer is quadratic on two shapes of a line, and reads each alike made short: a run
# of spaces before a character it has no token for ($, ?, !), which it reads again at each space, as
# one space; and a quote never closed, from which its string pattern reads to the line's end, again
# at each quote escaped after it, so an escaped quote or backslash is a backslash and "_" to it.
_SPACES = re.compile(r"[ \t\f]{2,}")
_ESCAPED = re.compile(r"\\['\"\\]")
# Cell magics that run their cell as Python in the notebook (``%%time``, ``%%capture``). Any other
# (``%%bash``, ``%%script false``, which is how Jupyter switches a cell off, ``%%writefile``, one IPython
# does not know) runs no Python there.
PYTHON_CELL_MAGICS = {"capture", "debug", "memit", "prun", "time"}  # %%timeit's runs in a function: none stays
NESTED_CELL_MAGICS = 16  # cell magics in a chain: a notebook nests 2 or 3; each reads the rest of the cell
# The line ends of str.splitlines, at which IPython splits a cell ("\r" made "\n" before); Python's is "\n".
_LINE_ENDS = "\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _for_the_tokenizer(line: str) -> str:
    return _SPACES.sub(" ", _ESCAPED.sub("\\\\_", line))


@functools.lru_cache(maxsize=64)  # loading and sanitizing read each cell about ten times (64 KiB at most)
def without_magics(source: str) -> str:
    """Drop IPython magics, shell escapes and help (``%matplotlib inline``, ``!pip ...``, ``SGD?``,
    ``files = !ls``), and the whole of a cell another language's cell magic runs.

    They only matter in Jupyter, and plain Python cannot compile them. Each is replaced by ``pass``
    at its indentation (an ``if`` that only installs a package keeps a body), or by the Python IPython
    would run in its place (``_without_magic``), so that line numbers in error messages still match the
    cell. The cell is read as IPython reads it (``_as_ipython_reads``): split at every line end
    ``str.splitlines`` knows, where a magic's line ends though Python's goes on (a form feed, U+2028);
    its blank first lines dropped, its common indentation removed. Line ends are ``\\n``: Python also
    ends a line at a lone ``\\r``, and every reader of a cell must count lines alike."""
    return "".join(_cell(source.replace("\r\n", "\n").replace("\r", "\n").splitlines(keepends=True)))


def _cell(lines: list[str]) -> list[str]:
    """A cell's lines, each ending as it did, as IPython runs them: a Python cell magic's body is a cell
    of its own there, and another's runs no Python at all. A line IPython drops is kept blank, its line
    end only if it is Python's. A body is dedented again only where indented (the first dedent emptied
    every line of spaces), and cell magics nest at most NESTED_CELL_MAGICS deep: bounded work."""
    kept: list[str] = []
    start = 0
    for _depth in range(NESTED_CELL_MAGICS + 1):
        first = next((number for number in range(start, len(lines)) if not lines[number].isspace()), len(lines))
        kept.extend("\n" if line.endswith("\n") else "" for line in lines[start:first])
        if start == 0 or lines[first:first + 1] and lines[first][:1] in " \t":
            lines = lines[:first] + textwrap.dedent("".join(lines[first:])).splitlines(keepends=True)
        if first == len(lines) or not lines[first].startswith("%%") or _CELL_MAGIC_HELP.match(lines[first]):
            return kept + _as_ipython_reads(lines[first:])
        name, _space, arguments = lines[first][2:].rstrip().partition(" ")  # IPython's split of its name
        if name not in PYTHON_CELL_MAGICS or name == "time" and arguments.strip():  # %%time takes no statement
            break
        kept.append("pass\n" if lines[first][-1] in _LINE_ENDS else "pass")
        start = first + 1
    return ["\n" * "".join(lines).count("\n")]


def _as_ipython_reads(lines: list[str]) -> list[str]:
    """The lines, a magic's in Python's place. As in IPython, a line is a magic's only where a statement
    starts (not inside brackets or a string, nor after a backslash outside a comment), and a magic's own
    lines joined by backslashes go with it. Python's tokenizer reads each line after it is rewritten,
    as IPython tokenizes the cell again after each magic: a magic's brackets and quotes are never
    Python's. One pass, in linear time. Where the tokenizer gives up, each line after is a statement's;
    where it stops (at a line of spaces that Python's line end does not end), IPython finds no magic."""
    kept: list[str] = []
    starts, joined = True, False  # joined: the line goes on with a magic, and is dropped with it
    timing: str | None = None  # the indentation of a %time whose code is the next line

    def readline() -> str:
        nonlocal starts, joined, timing
        if len(kept) == len(lines):
            return ""
        line = lines[len(kept)]
        end = line[-1] if line[-1] in _LINE_ENDS else ""
        code = line[:len(line) - len(end)]
        magic = joined or timing is not None
        if joined:
            python, joined = "", line.endswith("\\\n")
        elif timing is not None:  # IPython joins it to its %time: what %time runs, in its place
            python, timing = _without_magic(timing + code.strip()), None
        elif starts and line.endswith("\\\n") and _TIMED_NEXT_LINE.fullmatch(code.strip()):
            timing = code[:len(code) - len(code.lstrip())]
            python, magic = timing + "pass", True
        elif starts and (end in "\n" or not _HELP_AFTER.fullmatch(code)):  # "?" ends help where Python's line ends
            python = _without_magic(code)
            magic = python != code
            # IPython joins a magic's lines that end in a backslash (``!pip install \\`` then ``numpy``),
            # never a cell magic's first line to its body.
            joined = (magic and line.endswith("\\\n") and not python.endswith("\\")
                      and not code.lstrip().startswith("%%"))
        else:
            python = code
        end = "\n" if end and magic else end  # IPython's line in a magic's place ends as Python's
        indent = len(python) - len(python.lstrip(" \t\f")) if starts else 0  # what the tokenizer takes for it
        starts = False
        kept.append(python + end)
        return python[:indent] + _for_the_tokenizer(python[indent:]) + (end or "\n")

    depth, gave_up = 0, True
    try:
        for kind, string, *_ in tokenize.generate_tokens(readline):
            if kind == tokenize.OP and string in "([{":
                depth += 1
            elif kind == tokenize.OP and string in ")]}":
                depth -= 1
                if depth < 0:  # a bracket closed that never opened: Python fails the cell, and the tokenizer
                    break  # would read each line after as a continuation, its indentation unsqueezed
            elif kind in (tokenize.NEWLINE, tokenize.NL) and not depth:
                starts = True
        else:
            gave_up = False
    except (tokenize.TokenError, SyntaxError):
        pass
    while len(kept) < len(lines):
        starts = gave_up
        readline()
    return kept


def _without_magic(line: str) -> str:
    """A line where a statement starts, with Python in place of a magic: a shell's output assigned is an
    empty list (IPython's is a list of its lines), a magic's None, and ``%time`` leaves its code. A line
    that is Python stays as it is."""
    indent, code = line[:len(line) - len(line.lstrip())], line.strip()
    # A shell's or a magic's output assigned, as IPython reads it: ``files = !ls``, ``runs["h"] = %time fit()``.
    target, magic = _assigned(code) if any(mark in code.partition("=")[2] for mark in "!%") else ("", "")
    if magic[:1] in ("!", "%"):  # never Python: what IPython makes of it fails as it does where the target is not
        value = _untimed(magic)  # a shell line's output is a list; timed, None, as a magic's
        return f"{indent}{target} = {'[]' if magic[:1] == '!' else 'None' if value[:1] in '!%' else value}"
    timed = _untimed(code)
    if timed != code:  # what it times, read as a line of its own: a magic too
        return _without_magic(indent + timed)
    if code.startswith(("%", "!")) or _HELP.fullmatch(line):
        return indent + "pass"
    return line


def _untimed(code: str) -> str:
    """What ``%time`` (``%time %time``...) runs: its code, which gives its value."""
    position = 0
    while timed := _TIMED.match(code, position):
        position = timed.end()
    return code[position:]


def _assigned(code: str) -> tuple[str, str]:
    """(target, value) of a line split at its first "=" outside brackets and strings, as IPython finds
    an assignment; ("", "") if none. Tokens up to that "=" only (of the line with its runs of spaces
    made one): linear in the line."""
    depth = 0
    squeezed = _for_the_tokenizer(code)
    try:
        for kind, string, _start, (_row, column), _line in tokenize.generate_tokens(io.StringIO(squeezed).readline):
            if kind == tokenize.OP and string in "([{":
                depth += 1
            elif kind == tokenize.OP and string in ")]}":
                depth -= 1
            elif kind == tokenize.OP and string == "=" and depth == 0:
                at = -1  # the same "=" in the line: squeezing took spaces, quotes and backslashes only
                for _nth in range(squeezed.count("=", 0, column)):
                    at = code.index("=", at + 1)
                return code[:at].strip(), code[at + 1:].strip()
            elif kind in (tokenize.NEWLINE, tokenize.NL):
                break
    except (tokenize.TokenError, SyntaxError):
        pass
    return "", ""


def is_instructor_cell(cell: dict) -> bool:
    """A cell nbgrader locks or grades (the lesson's data cell, the test cells): never the student's code."""
    fields = cell.get("metadata", {}).get("nbgrader", {})
    return bool(fields.get("locked") or fields.get("grade")) and not fields.get("solution")


def cell_role(cell: dict) -> str | None:
    """What of a cell runs, its code read once: "setup", "solution", "added" (a code cell of neither,
    not the instructor's: only its definitions), or None (nothing)."""
    if is_setup_cell(cell):
        return "setup"
    if is_solution_cell(cell):
        return "solution"
    return "added" if cell.get("cell_type") == "code" and not is_instructor_cell(cell) else None


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def definitions_of(source: str, imported: set[str] = frozenset()) -> str:
    """Of a code cell the lesson did not ask for (one the student added, or a calling cell of the
    lesson), what the student's functions may use: its imports, functions, classes and names it assigns
    (``import tensorflow as tf``, ``Dense = keras.layers.Dense`` or a helper in a cell of its own, as in
    Jupyter; ``is_assignment``, whose calls are all of the ``imported`` names), the other lines blank so
    that line numbers still match the cell; "" when none. Its other statements (``model = build_model()``,
    a training, a plot) are the lesson's: they never run in grading. A line holding a kept statement and
    another (``import x; x.run()``) is left out whole."""
    try:
        tree = parse_cell(source)
    except SyntaxError:
        return ""
    lines = without_magics(source).split("\n")
    spans = [(node, range(min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))]),
                          node.end_lineno + 1)) for node in tree.body]
    keep = [isinstance(node, DEFINITIONS) or is_assignment(node, imported) for node, _ in spans]
    other = {number for (_, span), kept in zip(spans, keep) if not kept for number in span}
    # A kept statement sharing a line with another is left out whole, never cut in two.
    kept = {number for (_, span), k in zip(spans, keep) if k and not other.intersection(span) for number in span}
    return "\n".join(line if number in kept else "" for number, line in enumerate(lines, start=1)) if kept else ""


# What a call in an added cell may not be: a training or a prediction, which is the lesson's work.
MODEL_WORK = {"fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch"}
# Python's own functions an assignment may call (``len(CLASS_NAMES)``, ``dict(lr=0.01)``): all but
# those that run code given as text or wait for a person.
BUILTIN_CALLS = set(dir(builtins)) - {"exec", "eval", "compile", "__import__", "input", "breakpoint", "help"}


def is_assignment(node: ast.stmt, imported: set[str] = frozenset()) -> bool:
    """``N_ROWS, N_COLS = 4, 10``, ``layers = keras.layers``, ``rng = np.random.default_rng(42)``: names
    given a value whose calls are all of what the notebook imported (``np.``, ``keras.``, ``partial``),
    never of a function the notebook defines (a student's ``experiment()`` would train again, as would
    the contract's), nor a training or a prediction."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    names = [name for t in targets for name in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]
    if not targets or node.value is None or not all(isinstance(name, ast.Name) for name in names):
        return False
    return all(_imported_call(inner.func, imported) for inner in _evaluated(node.value) if isinstance(inner, ast.Call))


def _evaluated(node: ast.AST):
    """The nodes of an expression Python evaluates now: a lambda's body runs only when it is called. A
    loop, not a recursion: Python parses sums of thousands of terms, deeper than the recursion limit."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in ast.iter_child_nodes(node)
                     if not (isinstance(node, ast.Lambda) and child is node.body))


def _imported_call(callee: ast.expr, imported: set[str]) -> bool:
    """A dotted name (``np.random.default_rng``) rooted in an imported name, not a model's work."""
    if isinstance(callee, ast.Attribute) and callee.attr in MODEL_WORK:
        return False
    while isinstance(callee, ast.Attribute):
        callee = callee.value
    return isinstance(callee, ast.Name) and callee.id in imported and callee.id not in FUNCTIONS


def code_trees(cells):
    """Each code cell Python can parse, as (its number from 1, its tree)."""
    for index, cell in enumerate(cells, start=1):
        if cell.get("cell_type") == "code":
            try:
                yield index, parse_cell(cell_source(cell))
            except SyntaxError:
                continue


def imported_names(cells) -> set[str]:
    """What an assignment in an added cell may call: the names the import statements of these code
    cells bind (``np`` for ``import numpy as np``) and Python's builtins, less any name a cell defines
    with ``def`` or ``class`` (a student's own ``summary``, imported once, then written to train)."""
    names, defined = set(BUILTIN_CALLS), set()
    for _, tree in code_trees(cells):
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
    return names - defined


def bound_names(statement: ast.stmt) -> list[str]:
    """The names a statement of a cell binds, at any depth of its blocks (``if``, ``try``, ``with``):
    what it defines, imports or assigns. A loop, not a recursion: a statement may nest deeply."""
    names: list[str] = []
    nodes: list[ast.AST] = [statement]
    while nodes:
        node = nodes.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)  # what its body binds is its own
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif not isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node.id)
            nodes.extend(reversed(list(ast.iter_child_nodes(node))))
    return names
