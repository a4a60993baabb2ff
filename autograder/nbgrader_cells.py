"""What the assignment notebook's cells call: ``check("normalize", globals())``, ``summary(globals())``.

These run inside the student's kernel (in Jupyter, and under ``nbgrader autograde``). ``check`` runs
one of the kit's checks on the functions the notebook defines and prints one line, ``✓ id (points):
message``; a failed check raises ``FailedCheck``, which Jupyter shows as that one line, not a
traceback, and nbgrader counts as a failed test cell (0 points). ``summary`` prints a table of every
public check.

nbgrader also gives a test cell 0 points when anything reaches stderr, and TensorFlow writes there on
its own, so the checks run with stderr silenced — down to the file descriptor, where TensorFlow's C++
logging writes — and the training's progress goes to stdout, one line per epoch.

What a check looks at is probed once per set of definitions: the probes of every function are kept
while the same function objects are defined, the training while ``build_model``, ``compile_model``
and ``train_model`` are (re-running another function's cell does not train again).

The cells speak the notebook's language: the kernel's notebook (the one Jupyter Server names in
``JPY_SESSION_NAME``, else the assignment's notebook in the kernel's working directory, which is the
notebook's folder in Jupyter and under nbgrader) says it in its metadata, as the Chinese release
does; else the locale's language; else English (``kernel_language``).

This module and what it imports need only the student's install, not the grader's extras.
(In-kernel checks are only as trustworthy as the kernel: ``autograder grade`` runs student code in a
sandbox and judges its artifacts in a separate process instead.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder.assignment import FUNCTIONS, NOTEBOOK_NAME
from autograder.errors import CheckFailedInNotebook
from autograder.i18n import _, choose_language, speaking
from autograder.trainer.quiet import import_tensorflow_quietly, silenced_stderr

TRAINING_FUNCTIONS = ("build_model", "compile_model", "train_model")

# What this kernel probed, each entry with the function objects it was probed with (held, so that
# their ids cannot be reused by the functions of a cell run again).
_kernel_state: dict = {}


class FailedCheck(CheckFailedInNotebook):
    """A failed check: Jupyter shows its one line (IPython's ``_render_traceback_``), nbgrader sees an error."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def quiet_tensorflow() -> None:
    """Load TensorFlow without its start-up messages: the notebook's set-up cell calls it before
    ``import keras`` (matplotlib's backend stays the kernel's)."""
    import_tensorflow_quietly()


def kernel_notebook(environ=os.environ) -> Path | None:
    """The notebook this kernel runs: Jupyter Server's ``JPY_SESSION_NAME``, else the assignment's
    notebook in the working directory, if there is one."""
    named = environ.get("JPY_SESSION_NAME", "")
    for path in (Path(named) if named.endswith(".ipynb") else None, Path.cwd() / NOTEBOOK_NAME):
        if path is not None and path.is_file():
            return path
    return None


def kernel_language(environ=os.environ) -> str:
    """The kernel's notebook's own language (its metadata), else the locale's, else English."""
    import json

    notebook = None
    path = kernel_notebook(environ)
    if path is not None:
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            notebook = None  # a notebook being saved, or not one: the locale decides
    return choose_language(None, notebook, environ)


def _functions(namespace: dict) -> dict:
    return {name: namespace.get(name) if callable(namespace.get(name)) else None for name in FUNCTIONS}


def _cached(entry: str, functions: dict, names, make):
    """The kernel's ``entry``, made afresh by ``make()`` unless it was made with the same ``names`` functions."""
    held = _kernel_state.get(entry)
    if held is None or any(held[0][name] is not functions[name] for name in names):
        _kernel_state[entry] = (functions, make())
    return _kernel_state[entry][1]


def _reference():
    if "data" not in _kernel_state:
        from autograder.data.inputs import ProbeInputs
        from autograder.data.reference import ReferenceData

        data = ReferenceData.load()
        _kernel_state.update(data=data, inputs=ProbeInputs.from_reference(data))
    return _kernel_state["data"], _kernel_state["inputs"]


def _probed(functions: dict):
    from autograder.judge.evidence import Evidence
    from autograder.sandbox.probe import collect

    data, inputs = _reference()
    return Evidence(collect(functions, inputs), data)


def training_line(epochs: int) -> str:
    """What the training check's cell says before the epochs' lines."""
    from autograder.assignment import EPOCHS

    if epochs == EPOCHS:
        return _("Training your model for {epochs} epochs, as the grader does (about a minute):").format(epochs=epochs)
    return _("Training your model for {epochs} epochs, as the grader does:").format(epochs=epochs)


def _trained(functions: dict):
    from autograder.config import epochs_in_effect
    from autograder.judge.evidence import Evidence
    from autograder.sandbox.fit_client import FitClient, LocalTransport
    from autograder.sandbox.probe import collect
    from autograder.trainer.fast_path import epoch_progress
    from autograder.trainer.service import Trainer

    data, inputs = _reference()
    epochs = epochs_in_effect()  # the notebook's folder: the instructor's autograder.toml, if it is there
    print(training_line(epochs), flush=True)
    trainer = Trainer.from_images(data.train_images, data.train_labels, data.test_images,
                                  progress=[epoch_progress(sys.stdout)])
    artifacts = collect(functions, inputs, client=FitClient(LocalTransport(trainer)), epochs=epochs)
    return Evidence(artifacts, data, trainer.finish(), epochs=epochs)


def _quick(functions: dict):
    from autograder.quick_training import quick_training

    return quick_training(functions, _reference()[1])


def result_of(check, namespace: dict):
    """The ``CheckResult`` of one check on the notebook's functions; the training's quick check first."""
    from autograder.judge.evidence import run_check

    functions = _functions(namespace)
    with silenced_stderr():
        if check.id == "training":
            quick = _cached("quick", functions, TRAINING_FUNCTIONS, lambda: _quick(functions))
            if quick is not None:
                return quick
        if check.needs_training:
            evidence = _cached("trained", functions, TRAINING_FUNCTIONS, lambda: _trained(functions))
        else:
            evidence = _cached("probed", functions, FUNCTIONS, lambda: _probed(functions))
        return run_check(check, evidence)


def line(result) -> str:
    mark = "✓" if result.passed else "✗"
    return _("{mark} {id} ({points}/{max_points} points): {message}").format(
        mark=mark, id=result.id, points=result.points, max_points=result.max_points, message=result.message)


def check(check_id: str, namespace: dict) -> None:
    """Print a passed check's line; raise a failed one's (the test cell fails with that one line)."""
    from autograder.judge.checks import CHECKS_BY_ID

    with speaking(kernel_language()):
        result = result_of(CHECKS_BY_ID[check_id], namespace)
        shown = line(result)
    if not result.passed:
        raise FailedCheck(shown)
    print(shown)


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: two for each wide (Chinese) character."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def padded(text: str, columns: int, right: bool = False) -> str:
    space = " " * max(columns - width(text), 0)
    return space + text if right else text + space


def hidden_line(points: int) -> str:
    """What the check cells and the self-check say of the checks they do not run."""
    return _("Hidden checks ({points} points, such as the test accuracy) run only when your work is graded.").format(
        points=points)


def summary(namespace: dict) -> None:
    """Print every public check's result in a table, and the total (the training included: the
    training check's cell trains once; here it is trained again only if its functions changed)."""
    with speaking(kernel_language()):
        print("\n".join(summary_lines(namespace)))


def summary_lines(namespace: dict) -> list[str]:
    from autograder.judge.checks import CHECKS

    public = [check for check in CHECKS if not check.hidden]
    results = [result_of(check, namespace) for check in public]
    total_word = _("total")
    heading = [_("check"), _("points"), _("result")]
    first = max(width(text) for text in [*(check.id for check in public), total_word, heading[0]])
    second = max(6, width(heading[1]))
    rows = [f"{padded(heading[0], first)}  {padded(heading[1], second, True)}  {heading[2]}",
            f"{'-' * first}  {'-' * second}  {'-' * max(6, width(heading[2]))}"]
    for result in results:
        verdict = _("✓ passed") if result.passed else (_("✗ not done") if result.not_done else _("✗ failed"))
        rows.append(f"{padded(result.id, first)}  {padded(f'{result.points}/{result.max_points}', second, True)}  "
                    f"{verdict}")
    score, total = sum(r.points for r in results), sum(r.max_points for r in results)
    rows.append(f"{padded(total_word, first)}  {padded(f'{score}/{total}', second, True)}")
    rows.append(hidden_line(sum(check.points for check in CHECKS if check.hidden)))
    rows.extend(line(result) for result in results if not result.passed)
    return rows
