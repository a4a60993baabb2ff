"""Loading the contract functions from a notebook: the reference solution and broken notebooks."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from autograder.assignment import FUNCTIONS, SOURCE_NOTEBOOK
from autograder.errors import MissingFunctionError, NotebookError
from autograder.submission.notebook import load_functions, read_notebook, run_cells


def test_the_reference_notebook_defines_every_contract_function(reference_functions):
    assert list(reference_functions) == list(FUNCTIONS)
    assert all(callable(function) for function in reference_functions.values())


def test_loading_runs_set_up_and_solution_cells_only():
    loaded = run_cells(SOURCE_NOTEBOOK)
    assert loaded.cell_errors == []
    assert "CLASS_NAMES" in loaded.namespace  # the set-up cell ran
    # The cells that load data, train and plot did not.
    for name in ("train_images", "X_train", "model", "history", "test_accuracy"):
        assert name not in loaded.namespace


def test_loaded_functions_work(reference_functions):
    images = np.array([[[0, 51], [255, 102]]], dtype=np.uint8)
    scaled = reference_functions["normalize"](images)
    assert np.allclose(scaled, images / 255)
    assert images[0, 1, 0] == 255  # input untouched
    labels = np.arange(10)
    (X_train, y_train), (X_valid, y_valid) = reference_functions["split_validation"](
        np.zeros((10, 28, 28)), labels, n_valid=3
    )
    assert y_valid.tolist() == [0, 1, 2] and y_train.tolist() == list(range(3, 10))


def test_the_reference_model_has_the_lesson_s_parameter_counts(reference_functions):
    model = reference_functions["build_model"]()
    assert [layer.count_params() for layer in model.layers] == [0, 235500, 30100, 1010]
    assert model.count_params() == 266610
    assert model.output_shape == (None, 10)


# --- broken notebooks, each written to a temporary file ----------------------------------------


def reference_json() -> dict:
    return json.loads(SOURCE_NOTEBOOK.read_text())


def write(tmp_path, content, name="submission.ipynb"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def solution_cell(nb: dict, name: str) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == name)


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"cells": [', "not valid JSON (line 1"),
        ("", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a text file"),
        ([1, 2, 3], "not a Jupyter notebook"),
        ({"cells": [], "nbformat": 3, "nbformat_minor": 0, "metadata": {}}, "notebook format version 3"),
        ({"cells": [{"source": "x"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}, "malformed"),
        ('{"cells": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
    ],
    ids=["not_json", "empty", "binary", "json_list", "nbformat_3", "cell_without_type", "nested_too_deeply"],
)
def test_a_file_that_is_not_a_usable_notebook_gets_a_clear_error(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(NotebookError) as raised:
        load_functions(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(NotebookError, match="no such file"):
        read_notebook(tmp_path / "absent.ipynb")


def test_a_missing_function_is_named(tmp_path):
    nb = reference_json()
    nb["cells"].remove(solution_cell(nb, "predict_labels"))
    with pytest.raises(MissingFunctionError) as raised:
        load_functions(write(tmp_path, nb))
    assert raised.value.missing == ["predict_labels"]
    assert "does not define `predict_labels`" in str(raised.value)


def test_a_misnamed_function_is_reported_as_missing(tmp_path):
    nb = reference_json()
    cell = solution_cell(nb, "normalize")
    cell["source"] = "".join(cell["source"]).replace("def normalize(", "def normalise(")
    with pytest.raises(MissingFunctionError) as raised:
        load_functions(write(tmp_path, nb))
    assert raised.value.missing == ["normalize"]


def test_a_syntax_error_costs_only_its_own_function_and_says_where(tmp_path):
    nb = reference_json()
    cell = solution_cell(nb, "split_validation")
    cell["source"] = "def split_validation(images, labels, n_valid=5000):\n    return images[:n_valid // 2\n"
    path = write(tmp_path, nb)
    loaded = run_cells(path)
    assert loaded.missing == ["split_validation"]
    assert len(loaded.cell_errors) == 1 and "syntax error on line 2" in loaded.cell_errors[0]
    with pytest.raises(MissingFunctionError, match="syntax error on line 2"):
        load_functions(path)


def test_a_solution_cell_that_raises_is_reported(tmp_path):
    nb = reference_json()
    solution_cell(nb, "plot_samples")["source"] = (
        "def broken(function):\n    raise ValueError('no')\n@broken\ndef plot_samples(images, labels):\n    pass\n")
    with pytest.raises(MissingFunctionError, match="raised ValueError: no"):
        load_functions(write(tmp_path, nb))


def test_a_line_of_a_solution_cell_that_fails_costs_not_the_function_after_it(tmp_path):
    """Grading never loads the lesson's data: ``X_new = X_test[:3]`` above a ``def``, which worked in
    Jupyter, fails there. The definition after it runs all the same; the failure is recorded, so that
    the function's own failure can say why."""
    nb = reference_json()
    cell = solution_cell(nb, "predict_labels")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    cell["source"] = "X_new = X_test[:3]\n" + source + "\nprint(predict_labels(model, X_new))\n"
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.function("predict_labels") is not None and loaded.missing == []
    assert len(loaded.cell_errors) == 1 and "NameError: name 'X_test' is not defined" in loaded.cell_errors[0]


def test_messages_number_a_cell_as_the_student_s_notebook_does(tmp_path):
    """Grading runs a sanitized copy (the instructor's set-up first, the student's cells after it);
    a message names the cell by its place in the notebook the student wrote."""
    from autograder.submission.sanitize import sanitize

    nb = reference_json()
    cell = solution_cell(nb, "plot_samples")
    number = nb["cells"].index(cell) + 1
    cell["source"] = "def plot_samples(images, labels)\n    pass\n"
    sanitized = sanitize(nbformat.reads(json.dumps(nb), as_version=4), read_notebook(SOURCE_NOTEBOOK))
    assert nbformat.from_dict(sanitized).cells.index(next(
        c for c in sanitized.cells if "plot_samples" in c.source)) + 1 != number  # another place there
    loaded = run_cells(tmp_path / "submission.ipynb", sanitized)
    assert loaded.cell_errors == [f"cell {number} (`plot_samples`) has a syntax error on line 1: expected ':'"]
    assert run_cells(write(tmp_path, nb)).cell_errors == loaded.cell_errors  # as the student's own run says


def test_a_set_up_cell_that_fails_stops_loading_with_its_reason(tmp_path):
    nb = reference_json()
    setup = next(c for c in nb["cells"] if "setup" in c["metadata"].get("tags", []))
    setup["source"] = "import module_that_does_not_exist\n"
    with pytest.raises(NotebookError, match="set-up cell 4 raised ModuleNotFoundError"):
        load_functions(write(tmp_path, nb))


def test_solution_cells_are_found_even_without_nbgrader_metadata(tmp_path):
    nb = reference_json()
    for cell in nb["cells"]:
        cell["metadata"].pop("nbgrader", None)
    assert set(load_functions(write(tmp_path, nb))) == set(FUNCTIONS)


def test_magics_are_skipped_and_line_numbers_kept(tmp_path):
    nb = reference_json()
    cell = solution_cell(nb, "normalize")
    cell["source"] = "%matplotlib inline\n!pip list\ndef normalize(images):\n    return images / 255\n"
    functions = load_functions(write(tmp_path, nb))
    assert functions["normalize"](np.array([255], dtype=np.uint8)).tolist() == [1.0]


def test_a_shell_or_magic_output_assigned_to_a_name_leaves_the_cell_s_code_whole(tmp_path):
    """IPython's ``files = !ls`` and ``folder = %pwd``: the name gets an empty list or None, and the
    rest of the cell runs with its own line numbers."""
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "files = !ls\nfolder = %pwd\ndef normalize(images):\n    return images / 255\nnormalize(1 / 0)\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.function("normalize")(np.array([255], dtype=np.uint8)).tolist() == [1.0]
    assert loaded.namespace["files"] == [] and loaded.namespace["folder"] is None
    assert len(loaded.cell_errors) == 1 and "line 5" not in loaded.cell_errors[0]
    assert loaded.cell_errors[0].endswith("raised ZeroDivisionError: division by zero")


def test_the_reference_notebook_is_valid_nbformat_4():
    nb = read_notebook(SOURCE_NOTEBOOK)
    nbformat.validate(nb)
    assert nb.nbformat == 4


def test_the_set_up_cells_import_only_what_the_grading_sandbox_can_see():
    # Grading runs the source notebook's set-up cells in a sandbox that sees only the kit's child modules; the
    # notebook's other cells (the one that quiets TensorFlow, the checks) run only in Jupyter and nbgrader.
    import ast

    from autograder.sandbox.view import CHILD_MODULES
    from autograder.submission.cells import cell_source

    visible = {"autograder." + name.replace("/", ".") for name in CHILD_MODULES} | {"autograder.data"}
    nb = read_notebook(SOURCE_NOTEBOOK)
    setup = [cell for cell in nb.cells if "setup" in cell.metadata.get("tags", [])]
    assert setup
    for cell in setup:
        for node in ast.walk(ast.parse(cell_source(cell))):
            names = [node.module] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            assert all(name in visible for name in names if name.startswith("autograder")), cell_source(cell)


@pytest.mark.parametrize("line", ["x = " + "-" * 3000 + "1", "x = a" + ".b" * 3000, "x = " + "lambda: " * 3000 + "1",
                                  "x = " + "+".join(["1"] * 20_000)],
                         ids=["unary_minus", "attributes", "lambdas", "a_long_sum"])
def test_code_nested_too_deeply_for_python_is_the_student_s_error_not_the_grader_s(tmp_path, real_data_dir, line):
    """Python's parser gives up on such code with RecursionError or MemoryError, not SyntaxError. The
    grader reads cells in its own process too (which cells are solutions, the start order, the lint
    notes); what it cannot parse is the cell's fault, told to the student, and the other cells count."""
    from autograder.batch.local import grade_notebooks

    notebook = json.loads((SOURCE_NOTEBOOK).read_text())
    [cell] = [cell for cell in notebook["cells"] if "def normalize" in "".join(cell["source"])]
    cell["source"] = "".join(cell["source"]) + "\n" + line + "\n"
    for other in notebook["cells"]:  # no 30-epoch training: this test is about reading
        if "def train_model" in "".join(other["source"]):
            other["source"] = "def train_model(*args, **kwargs):\n    raise NotImplementedError()\n"
    path = tmp_path / "fashion_mnist_classifier.ipynb"
    path.write_text(json.dumps(notebook))
    [report] = grade_notebooks([path], data_dir=real_data_dir)
    assert report.error is None, report.error
    failing = {result.id: result.message for result in report.checks if not result.passed}
    assert "normalize" in failing and "split" not in failing, failing


@pytest.mark.parametrize("depth", [100, 400, 900])
def test_a_notebook_nested_deeper_than_jupyter_writes_is_refused_with_a_clear_error(tmp_path, depth):
    """JSON that Python's parser reads can still be too deep for what reads a notebook afterwards
    (nbformat's from_dict recurses twice per level; sanitize writes it again): the reader bounds the
    depth once, so every step after it may recurse."""
    from autograder.submission.sanitize import write_sanitized

    text = (SOURCE_NOTEBOOK).read_text()
    deep = '{"a": ' * depth + "1" + "}" * depth
    path = tmp_path / "deep.ipynb"
    path.write_text('{"x": ' + deep + ", " + text.lstrip()[1:])
    with pytest.raises(NotebookError, match="nested too deeply"):
        read_notebook(path)
    with pytest.raises(NotebookError, match="nested too deeply"):
        write_sanitized(path, None, tmp_path / "sanitized.ipynb")
    path.write_text('{"x": ' + '{"a": ' * 40 + "1" + "}" * 40 + ", " + text.lstrip()[1:])
    assert read_notebook(path).cells  # deeper than any notebook Jupyter writes, and still read


def edited_source_notebook(tmp_path, edit) -> "Path":
    notebook = json.loads(SOURCE_NOTEBOOK.read_text())
    edit(notebook)
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(notebook))
    return path


def normalize_cell(notebook) -> dict:
    return next(cell for cell in notebook["cells"] if "def normalize" in "".join(cell["source"]))


ODD_FIELDS = {
    "metadata_a_list": lambda cell: cell.update(metadata=[]),
    "tags_a_number": lambda cell: cell["metadata"].update(tags=3),
    "nbgrader_a_list": lambda cell: cell["metadata"].update(nbgrader=[]),
    "source_holding_a_number": lambda cell: cell.update(source=["x = 1\n", 2]),
    "source_holding_null": lambda cell: cell.update(source=["x = 1\n", None]),
    "source_an_object": lambda cell: cell.update(source={"a": 1}),
    "a_lone_surrogate": lambda cell: cell.update(source="x = '\ud800'\n"),
}


@pytest.mark.parametrize("odd", ODD_FIELDS, ids=list(ODD_FIELDS))
def test_a_cell_whose_fields_are_not_what_jupyter_writes_is_refused_when_read(tmp_path, odd):
    """Each of these failed a step after reading (sanitize, the lint notes) with AttributeError,
    TypeError or UnicodeEncodeError: the grader's fault, said as such, for the student's file."""
    from autograder.submission.sanitize import write_sanitized

    path = edited_source_notebook(tmp_path, lambda notebook: ODD_FIELDS[odd](normalize_cell(notebook)))
    with pytest.raises(NotebookError, match="cell"):
        read_notebook(path)
    with pytest.raises(NotebookError):
        write_sanitized(path, SOURCE_NOTEBOOK, tmp_path / "sanitized.ipynb")


def test_code_beyond_what_the_lesson_needs_is_refused_before_python_parses_it(tmp_path):
    """The grader parses every code cell in its own process, one parse at a time for all its workers,
    at about 1 GB of memory per MB of dense code: a notebook's code is bounded when it is read."""
    from autograder.submission.cells import parse_cell
    from autograder.submission.notebook import MAX_CELLS, MAX_CODE_CHARS

    dense = edited_source_notebook(tmp_path, lambda nb: normalize_cell(nb).update(source="a\n" * MAX_CODE_CHARS))
    with pytest.raises(NotebookError, match="KiB of code"):
        read_notebook(dense)
    many = edited_source_notebook(tmp_path, lambda nb: nb["cells"].extend(
        {"cell_type": "code", "metadata": {}, "source": "a", "outputs": [], "execution_count": None}
        for _ in range(MAX_CELLS)))
    with pytest.raises(NotebookError, match="cells"):
        read_notebook(many)
    with pytest.raises(SyntaxError):
        parse_cell("x = 1\x00")  # ValueError from Python's parser: a cell that does not parse


def test_a_notebook_of_countless_small_objects_is_refused_before_python_builds_them(tmp_path):
    """Each JSON object, list or value becomes Python objects (json, then nbformat): 8 MiB of ``{}``
    took 1.4 GiB in the grader's own process, outside every sandbox's limit. They are counted in the
    raw text first, strings aside, so braces and commas in code and outputs do not count."""
    from autograder.submission.notebook import MAX_NOTEBOOK_CONTAINERS, MAX_NOTEBOOK_VALUES

    junk = edited_source_notebook(tmp_path, lambda nb: nb["metadata"].update(junk=[{}] * MAX_NOTEBOOK_CONTAINERS))
    with pytest.raises(NotebookError, match="objects, lists and values"):
        read_notebook(junk)
    values = edited_source_notebook(tmp_path, lambda nb: nb["metadata"].update(junk=["Ā"] * MAX_NOTEBOOK_VALUES))
    with pytest.raises(NotebookError, match="objects, lists and values"):
        read_notebook(values)
    braces = "{[," * MAX_NOTEBOOK_VALUES
    quoted = edited_source_notebook(tmp_path, lambda nb: normalize_cell(nb).update(
        outputs=[{"output_type": "stream", "name": "stdout", "text": braces}]))
    assert read_notebook(quoted).cells


def test_strings_that_never_close_are_counted_in_one_pass(tmp_path):
    """Each quote of ``"\\"\\"\\…`` began a string that ran to the end of the file and failed, then the
    count went on one character later: 160 KB took 114 s with the interpreter's lock held, every
    grading thread stopped, before any JSON was parsed (helper-82). A submission may be 64 MiB."""
    import subprocess
    import sys

    unclosed = tmp_path / "unclosed.ipynb"
    unclosed.write_bytes(b'{"cells": [' + b'"\\' * 1_000_000 + b",")
    counted = subprocess.run(
        [sys.executable, "-c", "import sys; from autograder.submission.notebook import too_many_items; "
         "print(too_many_items(open(sys.argv[1], 'rb').read()))", str(unclosed)],
        capture_output=True, text=True, timeout=120,  # quadratic: hours; one pass: well under a second
    )
    assert counted.stdout.strip() == "False", counted.stderr
    with pytest.raises(NotebookError):
        read_notebook(unclosed)


@pytest.mark.parametrize("metadata", [
    {"tags": ["mine", "mine"]},  # Jupyter's schema wants tags unique,
    {"tags": ["todo, later", ""]},  # without commas, not empty
    {"tags": ["x" * 300 + ","] * 20_000},  # and nbformat's refusal quoted them all
    {"nbgrader": {"solution": True, "grade_id": "\ud800", "note": "\ud800"}},  # no UTF-8 for a lone surrogate
], ids=["duplicates", "comma_and_empty", "many_with_commas", "lone_surrogate"])
def test_cell_metadata_jupyter_would_not_write_is_left_out_and_the_notebook_graded(tmp_path, metadata):
    """Tags or nbgrader fields a student edited failed nbformat's writer in sanitize: "the grader failed"
    for the student's file, 0 points, and nbformat's message (the whole tag list, 61 MB) in every
    check's message, stored and shown (helper-82)."""
    from autograder.submission.sanitize import write_sanitized

    path = edited_source_notebook(tmp_path, lambda nb: normalize_cell(nb)["metadata"].update(metadata))
    write_sanitized(path, SOURCE_NOTEBOOK, tmp_path / "sanitized.ipynb")
    cells = json.loads((tmp_path / "sanitized.ipynb").read_text())["cells"]
    [normalize] = [cell for cell in cells if "def normalize" in "".join(cell["source"])]
    tags = normalize["metadata"].get("tags", [])
    assert len(tags) == len(set(tags)) and all(tag and "," not in tag for tag in tags)
    assert normalize["metadata"]["nbgrader"].get("solution") is True


def test_a_fault_of_the_grader_is_said_in_a_few_words(tmp_path, monkeypatch):
    """Whatever the fault's own text, the report holds a few hundred characters of it, in each check."""
    import autograder.batch.steps as steps
    from autograder.batch.steps import grade_submission

    def failing(*args, **kwargs):
        raise RuntimeError("x" * 1_000_000)

    monkeypatch.setattr(steps, "grade_steps", failing)
    from autograder.judge.checks import CHECKS

    batch = type("Batch", (), {"config": None, "checks": CHECKS})()
    report = grade_submission(tmp_path / "a.ipynb", batch)
    assert "the grader failed on this notebook: RuntimeError: xxx" in report.error and len(report.error) < 1000


def test_sanitize_keeps_of_a_cell_s_metadata_only_what_grading_reads(tmp_path):
    """Metadata Jupyter's schema refuses (``"jupyter": 3``) failed nbformat's writer in sanitize:
    the grader's fault said for the student's file. The sanitized cells carry their tags and
    nbgrader's fields, all that grading reads, and the kit's own number of the cell in the student's notebook."""
    from autograder.submission.sanitize import write_sanitized

    path = edited_source_notebook(tmp_path, lambda nb: normalize_cell(nb)["metadata"].update(jupyter=3, junk=[1]))
    write_sanitized(path, SOURCE_NOTEBOOK, tmp_path / "sanitized.ipynb")
    cells = json.loads((tmp_path / "sanitized.ipynb").read_text())["cells"]
    assert all(set(cell["metadata"]) <= {"tags", "nbgrader", "autograder"} for cell in cells)
    assert all(set(cell["metadata"].get("autograder", {})) <= {"cell"} for cell in cells)
    assert any("def normalize" in "".join(cell["source"]) for cell in cells)


def added_cell(nb: dict, before: str, source: str) -> None:
    """A code cell the student added, without nbgrader's metadata, before a solution cell."""
    index = nb["cells"].index(solution_cell(nb, before))
    nb["cells"].insert(index, {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                               "execution_count": None})


def test_imports_constants_and_helpers_in_cells_the_student_added_run_and_their_calls_do_not(tmp_path):
    """In Jupyter `import tensorflow as tf` or a helper in a cell of its own works; grading once ran
    solution cells only, so such a notebook lost every check that used them ("name 'tf' is not defined")
    while its own check cells showed them passing."""
    nb = reference_json()
    added_cell(nb, "normalize", "import math as m\nSCALE, NAMES = 255.0, ('a', 'b')\nRAISED = 1 / 0\n"
                                "print('a call')\nimport os; os.abort()\n")
    added_cell(nb, "normalize", "@staticmethod\ndef halve(x):\n    return x / 2\n\nhalve(2)\n")
    solution_cell(nb, "normalize")["source"] = (
        "def normalize(images):\n    return m.floor(SCALE) * images / SCALE / 255\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.cell_errors == []
    assert loaded.function("normalize")(np.array([255.0])).tolist() == [1.0]
    assert (loaded.namespace["NAMES"], callable(loaded.namespace["halve"])) == (("a", "b"), True)
    assert "RAISED" not in loaded.namespace and "os" not in loaded.namespace  # a call's line: left out whole


def test_an_added_cell_whose_import_fails_is_named_among_the_cell_errors(tmp_path):
    nb = reference_json()
    added_cell(nb, "normalize", "import a_module_nobody_installed\n")
    loaded = run_cells(write(tmp_path, nb))
    assert len(loaded.cell_errors) == 1 and "a_module_nobody_installed" in loaded.cell_errors[0]
    assert not loaded.missing


def test_ipython_help_and_display_work_as_in_jupyter(tmp_path):
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "np.argmax?\n??np.argmax\nnp.linalg.norm??\n"
        "def normalize(images):\n    display(images)\n    return images / 255\n"
    )
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.cell_errors == []
    assert loaded.function("normalize")(np.array([255.0])).tolist() == [1.0]


def test_sanitize_keeps_the_definitions_of_added_cells_and_never_the_lesson_s_or_the_tests(tmp_path):
    from autograder.submission.sanitize import write_sanitized

    def edit(nb):
        added_cell(nb, "build_model", "import tensorflow as tf\nmodel = build_model()\n")
        for cell in nb["cells"]:
            cell["metadata"].pop("nbgrader", None)  # an editor that strips metadata: the source still knows its cells

    path = edited_source_notebook(tmp_path, edit)
    write_sanitized(path, SOURCE_NOTEBOOK, tmp_path / "sanitized.ipynb")
    sources = ["".join(cell["source"]) for cell in json.loads((tmp_path / "sanitized.ipynb").read_text())["cells"]]
    assert "import tensorflow as tf\n\n" in sources
    assert not any("nbgrader_cells" in source or "load_fashion_mnist()" in source for source in sources)


def test_added_cells_keep_what_jupyter_would_and_run_none_of_the_lesson_s_calls(tmp_path):
    """Aliases and objects made by calls are names a helper uses (``Dense = keras.layers.Dense``); a
    failed import stops no helper after it and is named; a cell another language's magic runs (``%%script
    false``, Jupyter's way to switch a cell off) is none of Python's; a lone carriage return ends a line
    for every reader of the cell alike, so it cannot slip a call into a definition's line."""
    nb = reference_json()
    added_cell(nb, "normalize", "import a_module_nobody_installed\nDense = keras.layers.Dense\n"
                                "rng = np.random.default_rng(0)\nmodel = build_model()\n"
                                "X_new = X_test[:3]\ndef scale(x):\n    return x / 255\n")
    added_cell(nb, "normalize", "%%script false\ndef scale(x):\n    return x\n")
    added_cell(nb, "normalize", "import math\rCLASS_NAMES.reverse()\r")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.namespace["Dense"].__name__ == "Dense" and "rng" in loaded.namespace
    assert "model" not in loaded.namespace and "X_new" not in loaded.namespace
    assert loaded.namespace["scale"](255) == 1  # defined after the failed import, and not switched off
    assert loaded.namespace["CLASS_NAMES"][0] == "T-shirt/top"
    (error,) = loaded.cell_errors
    assert "a_module_nobody_installed" in error


def test_a_cell_above_the_set_up_runs_before_it_as_in_jupyter(tmp_path):
    from autograder.submission.sanitize import write_sanitized

    boots = ", ".join(['"Boot"'] * 10)

    def edit(nb):
        nb["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                               "source": f"CLASS_NAMES = [{boots}]\nimport math\n"})

    path = edited_source_notebook(tmp_path, edit)
    write_sanitized(path, SOURCE_NOTEBOOK, tmp_path / "sanitized.ipynb")
    loaded = run_cells(tmp_path / "sanitized.ipynb")
    assert loaded.namespace["CLASS_NAMES"][0] == "T-shirt/top" and "math" in loaded.namespace


def test_an_added_cell_never_calls_the_notebook_s_own_functions_nor_trains(tmp_path):
    """``history2 = experiment(30)``, a student's helper that builds and trains: where the data could be
    reached (limits-only, `autograder check`) it trained again at load, 120 s a cell, until a notebook of
    a few such cells ran past its limit and got 0."""
    nb = reference_json()
    added_cell(nb, "normalize", "from functools import partial\nCALLS = []\n"
                                "def experiment(epochs):\n    CALLS.append(epochs)\n    return epochs\n"
                                "history2 = experiment(30)\nalso = (experiment)(1)\n"
                                "fitted = keras.Model.fit(None)\nrng = np.random.default_rng(0)\n"
                                "Dense300 = partial(keras.layers.Dense, 300)\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.namespace["CALLS"] == [] and "history2" not in loaded.namespace and "also" not in loaded.namespace
    assert "fitted" not in loaded.namespace and loaded.cell_errors == []
    assert "rng" in loaded.namespace and loaded.namespace["Dense300"]().units == 300


def test_a_python_cell_magic_and_a_continued_comparison_leave_a_solution_cell_whole(tmp_path):
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "%%memit\ndef normalize(images):\n    assert (len(images)\n            != 0), 'empty'\n"
        "    return images / 255\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.cell_errors == [] and loaded.function("normalize")(np.array([255.0])).tolist() == [1.0]


def test_magics_are_read_where_ipython_reads_them_at_a_statement_s_start(tmp_path):
    """A ``%`` that begins a continued line is Python's operator, a ``!pip`` inside an ``if`` leaves
    the block a body, a ``%`` line inside a docstring is text; a statement that shares a line with a
    call is left out whole, never cut in two; helpers may call Python's builtins."""
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "import sys\nif 'google.colab' in sys.modules:\n    !pip install -q keras\n"
        "def normalize(images):\n    '''Scale.\n    %s stays\n    '''\n    label = ('%s'\n             % 'x')\n"
        "    return images / 255\n")
    added_cell(nb, "normalize", "d = {\n    'a': 1}; experiment()\nSIZE = len(CLASS_NAMES)\n"
                                "def helper():\n    return SIZE\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.cell_errors == [] and loaded.function("normalize")(np.array([255.0])).tolist() == [1.0]
    assert "%s stays" in loaded.function("normalize").__doc__
    assert loaded.namespace["helper"]() == 10 and "d" not in loaded.namespace


def test_the_figures_a_cell_opens_are_closed_after_it_as_jupyter_s_inline_backend_does(tmp_path):
    """The lesson's curve cell (``fig, ax = plt.subplots(...)``) and a student's own plots once left a
    figure open per notebook loaded: a process that loads many (a batch run in-process, the test suite)
    gathered them, and matplotlib's warning about more than 20 open figures failed later figures."""
    import matplotlib.pyplot as plt

    nb = reference_json()
    added_cell(nb, "normalize", "fig, ax = plt.subplots(figsize=(8, 5))\nshown = plt.figure()\n")
    before = set(plt.get_fignums())
    loaded = run_cells(write(tmp_path, nb))
    assert "fig" in loaded.namespace and set(plt.get_fignums()) == before


def test_an_added_assignment_deeper_than_the_recursion_limit_is_read_as_python_reads_it(tmp_path):
    """Python parses a sum of 2,000 terms; a recursive walk of it raised RecursionError in the grader's
    sanitize, which failed the notebook (helper-53 F2). Whether the assignment runs is Python's affair:
    compiled from its tree, statement by statement, it is too deep."""
    from autograder.submission.sanitize import sanitize

    nb = reference_json()
    added_cell(nb, "normalize", "TOTAL = " + " + ".join(["len(CLASS_NAMES)"] * 2000) + "\n")
    sanitized = sanitize(read_notebook(write(tmp_path, nb)), read_notebook(SOURCE_NOTEBOOK))
    assert any(cell.source.startswith("TOTAL = len(CLASS_NAMES)") for cell in sanitized.cells)
    assert run_cells(tmp_path / "submission.ipynb", sanitized).missing == []


def test_a_name_error_in_a_function_says_which_import_or_line_failed_before_it():
    """``import pandas as pd`` in a solution cell (the grader has no pandas): the function is defined, and
    its NameError alone would leave the student puzzled beside their own import."""
    from autograder.errors import StudentError
    from autograder.sandbox.probe import Prober

    def train_model():
        return pd.DataFrame()  # noqa: F821

    def predict_labels():
        return X_new  # noqa: F821

    cell_errors = ["cell 31 (`train_model`) raised ModuleNotFoundError: No module named 'pandas'",
                   "cell 40 (`predict_labels`) raised NameError: name 'X_new' is not defined",
                   "cell 12 (`normalize`) raised ValueError: unrelated"]
    prober = Prober({"train_model": train_model, "predict_labels": predict_labels}, cell_errors)
    with pytest.raises(StudentError) as pandas:
        prober.call("train_model")
    assert "name 'pd' is not defined; before that, cell 31" in str(pandas.value) and "cell 12" not in str(pandas.value)
    with pytest.raises(StudentError) as line:
        prober.call("predict_labels")
    assert "cell 40" in str(line.value) and "cell 12" not in str(line.value)


@pytest.mark.parametrize("tail", ["return images", "break", "def g(a, a):\n    pass"])
def test_an_error_python_finds_compiling_the_cell_fails_the_whole_cell_as_in_jupyter(tmp_path, tail):
    """Statement by statement, each compiled alone, a `return` outside a function after the def was
    only that line's failure, and the function stood (helper-55 F5)."""
    nb = reference_json()
    cell = solution_cell(nb, "normalize")
    cell["source"] = "def normalize(images):\n    return images / 255.0\n" + tail + "\n"
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.missing == ["normalize"] and "syntax error on line 3" in loaded.cell_errors[0]


def test_a_cell_is_compiled_without_the_grader_s_own_future_imports(tmp_path):
    """The grader's modules use `from __future__ import annotations`; compile() passed it on to the
    student's cell, where an annotation naming nothing then loaded, as it does not in Jupyter."""
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = "def normalize(images: NoSuchType):\n    return images / 255.0\n"
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.missing == ["normalize"] and "name 'NoSuchType' is not defined" in loaded.cell_errors[0]


def test_every_cell_of_a_sanitized_notebook_has_a_file_name_of_its_own(tmp_path):
    """The instructor's set-up cells carry no student's number: named by their place in the sanitized
    copy, they took the name of the student's cell of that number, whose lines a traceback then showed
    as the set-up's (helper-55 F6)."""
    from autograder.submission.notebook import cell_place
    from autograder.submission.sanitize import sanitize

    nb = reference_json()
    for source in ("import os", "def scale(images):\n    return images / 255.0"):
        nb["cells"].insert(1, {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                               "execution_count": None, "id": f"added{len(nb['cells'])}"})
    sanitized = sanitize(read_notebook(write(tmp_path, nb)), read_notebook(SOURCE_NOTEBOOK))
    places = [cell_place(cell, index, "n.ipynb") for index, cell in enumerate(sanitized.cells, start=1)]
    assert len({name for _, name in places}) == len(places)
    assert sum("set-up" in name for _, name in places) == 1


def test_a_future_import_holds_for_its_cell_and_the_cells_after_it_as_in_ipython(tmp_path):
    """IPython compiles a notebook's cells with one compiler, which keeps a `from __future__` import; each
    statement compiled on its own lost it (helper-56 F3)."""
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "from __future__ import annotations\ndef normalize(images: NDArray) -> NDArray:\n    return images / 255.0\n")
    solution_cell(nb, "split_validation")["source"] = (
        "def split_validation(images: NDArray, labels, n_valid=5000):\n"
        "    return (images[n_valid:], labels[n_valid:]), (images[:n_valid], labels[:n_valid])\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.missing == [] and loaded.cell_errors == []


def test_a_student_s_own_base_exception_is_a_failure_of_their_cell_or_function_as_in_jupyter(tmp_path):
    """IPython shows a traceback for any exception a cell raises, a ``BaseException`` subclass too,
    and the kernel goes on: so does grading, for the cell and for a function called by a probe."""
    from autograder.sandbox.probe import Prober

    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "class Stop(BaseException):\n    pass\nraise Stop('here')\ndef normalize(images):\n    raise Stop('no')\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.function("normalize") is not None
    assert any("raised Stop: here" in error for error in loaded.cell_errors), loaded.cell_errors
    prober = Prober({"normalize": loaded.function("normalize")}, loaded.cell_errors)
    prober.run("normalize", lambda: prober.call("normalize", np.zeros((2, 28, 28), dtype=np.uint8)))
    assert "`normalize` raised Stop at line 5 of your cell" in prober.artifacts.errors["normalize"]


def test_a_name_a_failed_line_left_undefined_is_named_where_a_function_uses_it(tmp_path):
    """``input_shape = X_train.shape[1:]`` above ``def build_model`` worked in Jupyter; grading never loads
    the lesson's data. The function's NameError names the line that failed and why (helper-57)."""
    from autograder.sandbox.probe import Prober

    nb = reference_json()
    cell = solution_cell(nb, "build_model")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    cell["source"] = "input_shape = X_train.shape[1:]\n" + source.replace("shape=(28, 28)", "shape=input_shape")
    loaded = run_cells(write(tmp_path, nb))
    (problem,) = loaded.cell_errors
    assert "name 'X_train' is not defined" in problem and "'input_shape'" in problem
    assert "without the lesson's other cells" in problem
    prober = Prober({"build_model": loaded.function("build_model")}, loaded.cell_errors)
    prober.run("build_model", lambda: prober.call("build_model"))
    message = prober.artifacts.errors["build_model"]
    assert "name 'input_shape' is not defined; before that, " in message and problem in message


def test_a_keyboard_interrupt_a_student_raises_fails_its_cell_and_a_person_s_ctrl_c_stops(tmp_path):
    """``raise KeyboardInterrupt`` stops Run All in Jupyter (helper-58 F3): in grading and in a self-check
    alike, that cell fails. A person's Ctrl-C, which the command line's handler marks, stops loading."""
    import signal

    from autograder.limits import STOPPED, stopped_by_a_person

    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "class StopHere(KeyboardInterrupt):\n    pass\ndef normalize(images):\n    return images / 255\n"
        "raise StopHere('stop Run All here')\n")
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.function("normalize") is not None
    assert [error.split(" raised ")[1] for error in loaded.cell_errors] == ["StopHere: stop Run All here"]
    solution_cell(nb, "normalize")["source"] = "import signal\nsignal.raise_signal(signal.SIGINT)\n"
    previous = signal.signal(signal.SIGINT, stopped_by_a_person)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_cells(write(tmp_path, nb))
    finally:
        signal.signal(signal.SIGINT, previous)
        STOPPED.clear()


@pytest.mark.parametrize("line, undefined", [
    ("import numpy as np, no_such_module", "'no_such_module' stayed undefined"),
    ("from no_such_module import *", None),
    ("input_shape = X_train.shape[1:]\ninput_shape = (28, 28)", None),
])
def test_a_failed_line_names_as_left_undefined_only_names_that_are(tmp_path, line, undefined):
    """What a failed statement bound before it failed, or a later line bound again, is defined (helper-58 F6)."""
    nb = reference_json()
    cell = solution_cell(nb, "normalize")
    cell["source"] = line + "\n" + (cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"]))
    (problem,) = run_cells(write(tmp_path, nb)).cell_errors
    assert problem.endswith(undefined) if undefined else "stayed undefined" not in problem, problem


def test_an_exception_whose_message_fails_or_never_ends_is_named_by_its_type(tmp_path):
    """Its class and its ``__str__`` are the student's: either may raise, or never return (helper-59 F3)."""
    from autograder.sandbox.probe import Prober

    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "class Odd(Exception):\n    def __str__(self):\n        raise ValueError('no message')\n"
        "class Endless(Exception):\n    def __str__(self):\n        while True:\n            pass\n"
        "raise Odd()\n")
    solution_cell(nb, "build_model")["source"] = (
        "class Named(type):\n    @property\n    def __name__(cls):\n        raise SystemExit('all good, score 100')\n"
        "class Odd(Exception, metaclass=Named):\n    pass\nraise Endless()\n")
    solution_cell(nb, "compile_model")["source"] = "raise Odd()\n"
    solution_cell(nb, "train_model")["source"] = (
        "def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):\n    raise Endless()\n")
    loaded = run_cells(write(tmp_path, nb))
    assert [problem.split(" raised ")[1] for problem in loaded.cell_errors] == ["Odd", "Endless", "Odd"]
    prober = Prober({"train_model": loaded.function("train_model")})
    prober.run("training", lambda: prober.call("train_model", None, None, None, None, None))
    message = prober.artifacts.errors["training"]
    assert message == "`train_model` raised Endless at line 2 of your cell (raise Endless()): "


def test_a_line_timed_with_the_time_magic_runs_as_in_ipython(tmp_path):
    """``%time`` runs its code and gives its value: ``history = %time model.fit(...)`` in train_model
    trains, and ``%time model.fit(...)`` too (helper-58 F5)."""
    nb = reference_json()
    solution_cell(nb, "normalize")["source"] = (
        "def normalize(images):\n    scaled = %time images / 255\n    %time scaled.setflags(write=False)\n"
        "    runs = {}\n    runs['scaled'] = %time scaled\n    return runs['scaled']\n"
        "print('= %d' % 3)\n")  # Python, as it stays
    loaded = run_cells(write(tmp_path, nb))
    assert loaded.cell_errors == []
    scaled = loaded.function("normalize")(np.array([255.0]))
    assert scaled.tolist() == [1.0] and not scaled.flags.writeable


@pytest.mark.parametrize("line", [
    " " * 30_000, "a" + " " * 30_000 + "= !x", "x" + " =" * 15_000,
    # Python 3.11's tokenizer reads a run of spaces again at each of its characters before one it has
    # no token for: minutes per line, with the lock every worker's parsing waits on (helper-63 F1).
    "x = 1" + " " * 30_000 + "$", "(" + " " * 30_000 + "?", "x = %ls" + "\t" * 30_000 + "`",
    "a" + " " * 30_000 + "??", "f(\n" + " " * 30_000 + "$)", "y = (" + " " * 30_000 + "!) = %ls",
    # Whitespace the tokenizer does not take for indentation: after \v, or on a line a stray closing
    # bracket makes a continuation to the tokenizer (helper-65 F1).
    "\v" + " " * 30_000 + "$", "\xa0" + " " * 30_000 + "$", ")\n" + " " * 30_000 + "$", "]\n" + "\t" * 30_000 + "?",
    # A quote never closed, every other one escaped: the tokenizer's string pattern reads to the end of
    # the line from each (helper-67 F1).
    "'\\" * 30_000 + "'", '"\\' * 30_000 + '"', "f(\n" + "'\\" * 30_000, "'\\" * 30_000 + "' = %x",
])
def test_a_long_line_is_read_for_magics_in_linear_time(line):
    """Loading reads every line of a student's cell in the grader's own process (helper-60 F1): a pattern
    that backtracks took hours on a line of spaces. Seconds here are a bound a blowup breaks, not a timing."""
    from autograder.limits import time_limit
    from autograder.submission.cells import without_magics

    with time_limit(20):
        assert len(without_magics(line).split("\n")) == len(line.split("\n"))


def test_a_message_of_the_student_s_own_str_class_is_read_as_a_plain_str():
    from autograder.limits import exception_words

    class Text(str):
        def __str__(self):
            return self

        def strip(self, *args):
            raise SystemExit("escaped")

    class Raised(Exception):
        def __str__(self):
            return Text("boom")

    kind, message = exception_words(Raised())
    assert (kind, message, type(message)) == ("Raised", "boom", str)
    assert len(exception_words(ValueError("x" * 10**6))[1]) == 2000  # bounded in length too (helper-61 F4)


@pytest.mark.parametrize("source", [
    'text = """line\n%s""" \\\n% (7,)\n',  # a backslash after a string that spans lines (helper-61 F2)
    'text = """line\n%s"""\\\n% (7,)\n',
    "text = ('%s'\n% (7,))\n",
    "text = '%s' \\\n% (7,)\n",
])
def test_a_cell_that_is_python_is_never_rewritten(source):
    from autograder.submission.cells import without_magics

    compile(source, "<cell>", "exec")
    assert without_magics(source) == source


def test_a_comment_that_ends_in_a_backslash_continues_nothing():
    """A comment ends its line whatever its last character: the magic below it is read as one."""
    from autograder.submission.cells import without_magics

    assert without_magics("# data in C:\\data\\\n%matplotlib inline\nx = 1  # C:\\\n!pip list\n") == (
        "# data in C:\\data\\\npass\nx = 1  # C:\\\npass\n")


def test_a_magic_that_goes_on_after_a_backslash_is_dropped_whole():
    """IPython joins the lines of ``!pip install \\`` and ``numpy``: the second is the magic's, not Python."""
    from autograder.submission.cells import without_magics

    assert without_magics("!pip install \\\n    numpy \\\n    pandas\nfiles = !ls \\\n-la\nx = 1\n") == (
        "pass\n\n\nfiles = []\n\nx = 1\n")
    assert without_magics("%time x = sum([1,\\\n 2])\n") == "x = sum([1,\\\n 2])\n"


@pytest.mark.parametrize("line", ['slow_{copy} = f"{text}"', 'slow_{copy} = f"{text}" +', 'd[f"{text}", {copy}] = %ls'])
def test_the_grader_parses_a_cell_s_text_once_however_many_readers_read_it(tmp_path, monkeypatch, line):
    """Ordering, sanitizing and linting read each cell about ten times in the grader's own process, and
    a 64 KiB f-string takes Python's parser about a second: three such cells cost 22 s (helper-62 F1),
    whether they parse or not, and a magic's output assigned to one cost 26 s in a notebook of more cells
    than the reading of magics keeps (helper-70 F1)."""
    import ast
    from collections import Counter

    from autograder.batch.order import estimate_and_trees
    from autograder.batch.steps import lint_notes
    from autograder.submission.sanitize import write_sanitized

    nb = reference_json()
    for copy in range(3):
        nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                            "source": line.format(copy=copy, text="{a}" * 2000) + "\n"})
    for tiny in range(70):
        nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                            "source": str(tiny)})
    path = write(tmp_path, nb)
    parsed, parse = Counter(), ast.parse
    monkeypatch.setattr(ast, "parse", lambda text, *args, **kw: parsed.update([text]) or parse(text, *args, **kw))
    estimate_and_trees(path)
    write_sanitized(path, SOURCE_NOTEBOOK, tmp_path / "sanitized.ipynb")
    lint_notes(path)
    slow = {text: count for text, count in parsed.items() if "{a}{a}" in text}
    assert slow and max(slow.values()) == 1, sorted(slow.values())


def test_a_chain_of_cell_magics_is_read_in_bounded_time(monkeypatch):
    """Each cell magic's body is a cell to IPython, dedented again: 9,000 ``%%time`` lines of one cell
    took 13 s in the grader's own process, and 8,000 indented ones joined by form feeds, which dedent
    does not see as line ends, 6 s (helper-72 F1). A body is dedented only where indented, and a chain
    deeper than a notebook needs (NESTED_CELL_MAGICS) is no Python."""
    import textwrap

    from autograder.submission import cells

    dedented, dedent = [], textwrap.dedent
    monkeypatch.setattr(textwrap, "dedent", lambda text: dedented.append(len(text)) or dedent(text))
    for source in ("%%time\n" * 9000 + "x = 1\n", "%%time\n" + " %%time\x0c" * 8000):
        dedented.clear()
        assert cells.without_magics(source) == "\n" * source.count("\n")
        assert sum(dedented) <= (cells.NESTED_CELL_MAGICS + 1) * len(source), len(dedented)
    assert cells.without_magics("%%capture\n  %%time\n    x = 1\n") == "pass\npass\nx = 1\n"


@pytest.mark.parametrize("source, python", [
    # A magic's brackets and quotes are the magic's: IPython reads the cell again after each magic it
    # rewrites, and so does the kit (helper-62 F3).
    ("!echo :(\n%matplotlib inline\ndef normalize():\n    return 1\n", "pass\npass\ndef normalize():\n    return 1\n"),
    ("!echo '''\ns = '''\n%matplotlib inline\n'''\n", "pass\ns = '''\n%matplotlib inline\n'''\n"),
    ("!pip install a \\\nx = (1,\n%matplotlib inline\n", "pass\n\npass\n"),
    # A cell magic's first line is never joined to the body (helper-62 F2): %%time's then has a statement,
    # which it refuses (helper-72 F4); %%capture's is the name of its output.
    ("%%time \\\nhistory = 1\ny = 2\n", "\n\n\n"), ("%%capture \\\nhistory = 1\n", "pass\nhistory = 1\n"),
    # The assignment is at the first "=" outside brackets and strings (helper-62 F4).
    ('runs["lr=0.01"] = %time f()\n', 'runs["lr=0.01"] = f()\n'),
    ("runs[f(a=1)] = !ls\n", "runs[f(a=1)] = []\n"),
    # A cell pasted indented as a whole runs in IPython, which takes the common indentation away.
    ("    x = 1\n\n    if x:\n        y = 2\n", "x = 1\n\nif x:\n    y = 2\n"),
    ("model.layers[0]?\nmodel.layers[-1].get_weights??\n", "pass\npass\n"),
    # %time runs its code as IPython reads it, a magic too: what the child runs is what the grader reads
    # (helper-63 F2).
    ("%time %time x = 1\n%time !ls\ny = %time %ls\n%time x?\n", "x = 1\npass\ny = None\npass\n"),
    # A cell magic's body indented as a whole, and whitespace-only lines, as IPython 9 reads them (F3).
    ("%%time\n    x = 1\n    y = 2\n", "pass\nx = 1\ny = 2\n"),
    ("s = '''a\n   \nb'''\n", "s = '''a\n\nb'''\n"),
    # A cell magic's body is a cell to IPython, its own first line a cell magic too (helper-65 F2).
    ("%%time\n%%script false\nraise SystemExit\n", "\n\n\n"),
    ("%%capture\n  %%time\n    x = 1\n", "pass\npass\nx = 1\n"),
    # IPython parts a magic's name from its code at a space; %time gives None for a shell line (F3, F4).
    ("%time\tx = 1\nx = %time !ls\n", "pass\nx = None\n"),
    ("%time \tx = 1\n", "x = 1\n"),
    # A cell magic IPython does not know fails the cell there: nothing runs (helper-67 F4).
    ("%%TIME\nx = 1\n", "\n\n"), ("%%cython\ndef f():\n    return 1\n", "\n\n\n"),
    # %%timeit runs its body inside a function: nothing it defines stays; IPython parts a cell magic's
    # name at a space (helper-68 F3).
    ("%%timeit -n 1\ndef f():\n    return 1\n", "\n\n\n"), ("%%capture\tout\nx = 1\n", "\n\n"),
    ("%%capture out\nx = 1\n", "pass\nx = 1\n"),
    # IPython splits a cell at every line end of str.splitlines: a magic's line ends there, where
    # Python's goes on; its first lines of whitespace are dropped (helper-70 F4, F5, F7).
    ("%pwd\x0cdef f():\n    return 1\n", "pass\ndef f():\n    return 1\n"),
    ("files = !ls\u2028x = 1\n", "files = []\nx = 1\n"), ("!echo\x85x = 1", "pass\nx = 1"),
    ("%%time\x0bx = 1\n", "pass\nx = 1\n"), ("  \x0b\nx = 1\n", "\nx = 1\n"), ("  \x0bx = 1\n", "x = 1\n"),
    ("\x0c%%script false\nx = 1\n", "\n\n"), ("s = 'a\u2028b'\n", "s = 'a\u2028b'\n"),
    ("!pip install \\\n\x1cx = 1\n", "pass\n\nx = 1\n"),
    # Help after a name ends where Python's line ends, not at a form feed; help on a cell magic is help.
    ("a?\x0cx = 1\n", "a?\x0cx = 1\n"), ("?a\x0cx = 1\n", "pass\nx = 1\n"), ("%%time?\nx = 1\n", "pass\nx = 1\n"),
    # %time's code is the line its backslash joins, at any indentation, a blank or a comment too (F3,
    # helper-72 F3); a lone backslash is Python's (helper-72 F2); %%time takes no statement (F4).
    ("%time \\\n    x = 2\ny = 3\n", "pass\nx = 2\ny = 3\n"), ("%time \\\n\nx = 1\n", "pass\n\nx = 1\n"),
    ("%time \\\n# fit\nx = 1\n", "pass\n# fit\nx = 1\n"),
    ("if x:\n    %time \\\n  y = 1\n", "if x:\n    pass\n    y = 1\n"),
    ("\\\ndef f(): pass\n", "\\\ndef f(): pass\n"), ("%%time x = 1\ny = 2\n", "\n\n"),
    # A chain of cell magics deeper than a notebook needs is no Python (helper-72 F1, helper-74 b).
    ("%%time\n" * 17 + "x = 1\n", "\n" * 18), ("%%time\n" * 16 + "x = 1\n", "pass\n" * 16 + "x = 1\n"),
    # IPython joins ``%time\`` to its next line too (helper-74 A1).
    ("%time\\\nh = 1\n", "pass\nh = 1\n"), ("%time %time \\\nh = 1\n", "pass\nh = 1\n"),
])
def test_a_cell_reads_as_ipython_reads_it(source, python):
    from autograder.submission.cells import without_magics

    assert without_magics(source) == python


def test_a_function_that_reads_a_variable_of_the_lesson_is_told_to_use_its_arguments(tmp_path):
    """In Jupyter `X_test` is a global of the lesson's cells; grading runs none of them (helper-66)."""
    import types

    from autograder.sandbox.probe import Prober

    nb = reference_json()
    solution_cell(nb, "train_model")["source"] = (
        "def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):\n"
        "    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_test, y_test))\n")
    prober = Prober({"train_model": run_cells(write(tmp_path, nb)).function("train_model")})
    model = types.SimpleNamespace(fit=lambda *args, **kwargs: None)
    prober.run("training", lambda: prober.call("train_model", model, None, None, None, None))
    message = prober.artifacts.errors["training"]
    assert "NameError" in message and "`X_test` is a variable of the lesson's other cells" in message, message
    # A name the function itself should have assigned is not the lesson's to give (helper-68 F4).
    solution_cell(nb, "train_model")["source"] = (
        "def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):\n"
        "    model.fit(X_train, y_train, epochs=epochs)\n    return history\n")
    prober = Prober({"train_model": run_cells(write(tmp_path, nb)).function("train_model")})
    prober.run("training", lambda: prober.call("train_model", model, None, None, None, None))
    assert "lesson's other cells" not in prober.artifacts.errors["training"]


def test_a_mistake_repeated_thousands_of_times_is_noted_once_and_the_notes_are_few(tmp_path):
    """4 cells of 2,600 lines of `model.evaluate(test_images)` gave 10,400 notes, 2.4 MB in the batch's log,
    the feedback page and the stored result (helper-80)."""
    from autograder.batch.steps import lint_notes
    from autograder.submission.lint import MAX_NOTES

    nb = reference_json()
    for _copy in range(3):  # each cell under the 64 KiB one may hold
        nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                            "source": "model.evaluate(test_images, test_labels)\n" * 1500})
    for extra in range(20):
        nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                            "source": f"model.predict(test_images)  # {extra}\n"})
    notes = lint_notes(write(tmp_path, nb))
    assert len(notes) == MAX_NOTES + 1 and len(set(notes)) == len(notes), notes[:3]
    assert notes[-1] == f"and {3 + 20 - MAX_NOTES} more notes like these"
