"""Gradescope's autograder zip (``autograder gradescope-package OUT.zip``) and what it runs per submission.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` there once, as root, on
its Ubuntu image, and then ``run_autograder`` for each submission, with the student's upload in
``/autograder/submission``; whatever ``/autograder/results/results.json`` holds afterwards is the
grade (https://gradescope-autograders.readthedocs.io/en/latest/specs/).

The zip holds the kit's package and ``pyproject.toml`` under ``kit/``, and a notebook of the
source's set-up cells only, where grading looks for the instructor's source: the notebook that
runs still takes its imports, seed and ``CLASS_NAMES`` from the instructor. No solution, no test
cell and none of the kit's tests go in: on Gradescope's machine a student's code may read more
than on ours (its containers seldom allow namespaces, so the sandbox may be limits only).
``setup.sh`` installs the kit in a virtual environment and fetches Fashion-MNIST into Keras's
cache (that machine has the internet), checked against the kit's pinned digests.

``run_autograder`` grades with ``autograder.batch.local.grade_notebooks`` and writes
``gradescope_results`` (``autograder.reports.formats``), the one Gradescope format of the kit:
hidden checks shown once grades are published, the test accuracy on the leaderboard, the
grader's log (``stdout``) for the staff only. Whatever happens, a ``results.json`` is written:
no notebook, several, a broken one or a failing grader give score 0 and say why.
"""

from __future__ import annotations

import io
import sys
import traceback
import zipfile
from pathlib import Path

from autograder.assignment import NOTEBOOK_NAME, REPO_ROOT, SOURCE_NOTEBOOK
from autograder.files import atomic_write, files_below
from autograder.i18n import _, choose_language, speaking
from autograder.judge.report import GradeReport
from autograder.reports.formats import gradescope_results, json_text

KIT = "kit"  # where the kit goes inside the zip, so /autograder/source/kit on Gradescope
VENV = "/opt/fashion-mnist-autograder"  # the Python setup.sh installs, outside the folders Gradescope fills

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image, with the zip unpacked in /autograder/source.
set -euo pipefail
SOURCE="${{AUTOGRADER_ROOT:-/autograder}}/source"
VENV="{VENV}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# bubblewrap: the strongest sandbox the container allows (the grader says which one it got).
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap ca-certificates
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
# Editable: grading reads the set-up cells from $SOURCE/{KIT}/solutions/ (no solution is there).
# The grading extra, where the kit has one; pip only warns where it has none.
"$VENV/bin/pip" install -e "$SOURCE/{KIT}[grade]"
# Fashion-MNIST into Keras's cache (/root/.keras/datasets), checked against the kit's pinned digests.
"$VENV/bin/python" -c "from autograder.data import load_fashion_mnist; load_fashion_mnist()"
"""

FALLBACK_OUTPUT = (
    "The autograder stopped before it could grade your notebook; this is not a mistake in your work. "
    "Submit again, and tell your instructor if it happens again."
)

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this per submission, as root: it grades the notebook in submission/ and writes
# results/results.json. Off Gradescope, AUTOGRADER_ROOT (default /autograder) and AUTOGRADER_PYTHON
# (default the Python setup.sh installed) say where.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-{VENV}/bin/python}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT" || true
"$PYTHON" -m autograder.reports.gradescope_package "$ROOT"
if [ ! -s "$RESULTS" ]; then
    # The grader could not start, or was killed: a result all the same, so that the student sees why.
    printf '%s\\n' '{{"score": 0, "output": "{FALLBACK_OUTPUT}", "stdout_visibility": "hidden", "tests": []}}' \\
        > "$RESULTS"
fi
exit 0
"""


class SubmissionProblem(Exception):
    """What is wrong with what the student uploaded, in their terms."""


def setup_notebook() -> str:
    """The source notebook with only its set-up cells: what grading takes from the instructor."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from autograder.submission.cells import is_setup_cell
    from autograder.submission.notebook import read_notebook

    source = read_notebook(SOURCE_NOTEBOOK)
    cells = [new_code_cell(cell.source, metadata=dict(cell.metadata)) for cell in source.cells if is_setup_cell(cell)]
    return nbformat.writes(new_notebook(cells=cells, metadata=dict(source.metadata)))


def kit_files(root: Path = REPO_ROOT) -> dict[str, bytes]:
    """What ``setup.sh`` installs the kit from, by its name in the zip."""
    files = {f"{KIT}/{name}": (root / name).read_bytes() for name in ("pyproject.toml", "README.md")}
    if (root / "autograder.toml").is_file():  # the instructor's configuration, where the kit has one
        files[f"{KIT}/autograder.toml"] = (root / "autograder.toml").read_bytes()
    for path in sorted((root / "autograder").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files[f"{KIT}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    files[f"{KIT}/{SOURCE_NOTEBOOK.relative_to(root).as_posix()}"] = setup_notebook().encode()
    return files


def package_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text, mode in (("setup.sh", SETUP_SH, 0o755), ("run_autograder", RUN_AUTOGRADER, 0o755)):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16  # a regular file, executable once unpacked
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        for name, data in kit_files().items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_package(path: Path) -> Path:
    """Write the autograder zip to ``path`` (in the zip's root: setup.sh, run_autograder, kit/)."""
    atomic_write(path, package_bytes(), mode=0o644)
    return path


def find_notebook(folder: Path) -> Path:
    """The notebook to grade in the student's upload: the only one, or the one with the assignment's name."""
    if not folder.is_dir():
        raise SubmissionProblem(_("no submission was found: upload {notebook}").format(notebook=NOTEBOOK_NAME))
    found = files_below(folder, ".ipynb", frozenset({".ipynb_checkpoints", "__MACOSX"}))
    if not found:
        raise SubmissionProblem(
            _("your submission holds no notebook: upload {notebook}").format(notebook=NOTEBOOK_NAME))
    if len(found) == 1:
        return found[0]
    named = [path for path in found if path.name == NOTEBOOK_NAME]
    if len(named) == 1:
        return named[0]
    # The reason is each check's message too: a few names, each cut short.
    names = ", ".join(name if len(name) <= 80 else name[:79] + "…"
                      for name in (path.relative_to(folder).as_posix() for path in found[:5]))
    names += f", … (+{len(found) - 5})" if len(found) > 5 else ""
    raise SubmissionProblem(_("your submission holds several notebooks ({names}): upload only {notebook}").format(
        names=names, notebook=NOTEBOOK_NAME))


def grade_upload(root: Path) -> dict:
    """Gradescope's results for the upload in ``root/submission``."""
    import tempfile

    from autograder.batch.local import grade_notebooks
    from autograder.reports.text import format_logged

    with speaking(choose_language()):  # no notebook to say its language: the locale's, else English
        try:
            notebook = find_notebook(root / "submission")
        except SubmissionProblem as problem:
            return gradescope_results(GradeReport.ungraded(root / "submission", str(problem)))
    with tempfile.TemporaryDirectory(prefix="gradescope-") as scratch:
        reports = grade_notebooks([notebook], out=sys.stdout, show=format_logged, results=Path(scratch) / "results",
                                  private=[root / "results"])
    return gradescope_results(reports[0])


def run_autograder(root: Path) -> int:
    """Grade ``root/submission`` into ``root/results/results.json``; a failing grader gives score 0, never no file."""
    try:
        results = grade_upload(root)
    except Exception as error:
        traceback.print_exc(file=sys.stdout)  # the staff's log; students see only the output below
        with speaking(choose_language()):
            reason = _("the autograder failed ({error}); this is not a mistake in your notebook").format(
                error=type(error).__name__)
            results = gradescope_results(GradeReport.ungraded(root / "submission", reason))
    atomic_write(root / "results" / "results.json", json_text(results), mode=0o644)
    print(f"score {results['score']}/{results.get('max_score')}", flush=True)
    return 0


if __name__ == "__main__":
    from autograder import skip_slow_optional_imports

    skip_slow_optional_imports()
    sys.exit(run_autograder(Path(sys.argv[1] if len(sys.argv) > 1 else "/autograder")))
