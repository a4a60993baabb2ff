"""The order a batch starts in on several workers: the longest expected first (autograder.batch.order)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import nbformat

from autograder.batch.order import estimated_seconds, start_order

SUBMISSIONS = Path(__file__).parent / "submissions"


def notebook(tmp_path: Path, name: str, *cells: str, lesson: str | None = None) -> Path:
    """A notebook whose solution cells are ``cells`` (and one lesson cell, which grading never runs)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import re\nimport keras", metadata={"tags": ["setup"]})]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    if lesson:
        nb.cells.append(nbformat.v4.new_code_cell(lesson))
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def compiled_with(optimizer: str) -> str:
    return (
        "def compile_model(model):\n"
        f"    model.compile(loss='sparse_categorical_crossentropy', optimizer={optimizer})\n"
        "    return model"
    )


TRAIN = (
    "def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):\n"
    "    return model.fit(X_train, y_train, {})"
)


def test_the_estimate_ranks_the_lesson_s_variants_as_grading_them_costs():
    # benchmarks/grade_batch.py measured 46.4 s (Adam), 32 s (the reference), 16 s (10 epochs).
    estimate = {name: estimated_seconds(SUBMISSIONS / f"{name}.ipynb") for name in (
        "adam_instead_of_sgd", "passes_all", "optimizer_as_object", "ten_epochs_only", "unfilled_stubs", "not_json",
    )}
    assert estimate["adam_instead_of_sgd"] > estimate["passes_all"] > estimate["ten_epochs_only"]
    assert estimate["optimizer_as_object"] == estimate["passes_all"]  # "sgd" and keras.optimizers.SGD() alike
    assert 40 < estimate["adam_instead_of_sgd"] < 50 and 28 < estimate["passes_all"] < 35
    assert estimate["ten_epochs_only"] > estimate["unfilled_stubs"] > estimate["not_json"] == 0  # stubs never train


def test_a_file_json_cannot_read_is_estimated_not_raised(tmp_path):
    deep = tmp_path / "deep.ipynb"
    deep.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + ', "nbformat": 4}')  # RecursionError in json
    assert estimated_seconds(deep) == 0  # turned away as not a notebook, before anything runs
    assert [index for index, _ in start_order([SUBMISSIONS / "passes_all.ipynb", deep])] == [0, 1]


def test_the_estimate_follows_names_batch_sizes_and_the_optimizer_s_state(tmp_path):
    def seconds(*cells, lesson=None):
        return estimated_seconds(notebook(tmp_path, f"n{len(list(tmp_path.iterdir()))}", *cells, lesson=lesson))

    reference = seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs"))
    assert seconds(compiled_with("'SGD'"), TRAIN.format("epochs=30")) == reference
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs, batch_size=32")) == reference
    # Values read through names in the cells grading runs, the grader's 30 epochs for what it cannot read.
    assert seconds(compiled_with("'sgd'"), "EPOCHS = 10\n" + TRAIN.format("epochs=EPOCHS")) < reference
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=int('30')")) == reference
    assert seconds("opt = keras.optimizers.Adam()\n" + compiled_with("opt"), TRAIN.format("epochs=epochs")) > reference
    # More batches, more updates; state per weight makes an update dearer.
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs, batch_size=16")) > reference
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs, batch_size=128")) < reference
    momentum = seconds(compiled_with("keras.optimizers.SGD(momentum=0.9)"), TRAIN.format("epochs=epochs"))
    assert momentum > reference
    assert seconds(compiled_with("keras.optimizers.SGD(momentum=0.0)"), TRAIN.format("epochs=epochs")) == reference
    no_optimizer = (
        "def compile_model(model):\n    model.compile(loss='sparse_categorical_crossentropy')\n    return model"
    )
    assert seconds(no_optimizer, TRAIN.format("epochs=epochs")) > momentum  # Keras then uses RMSprop
    # An unknown optimizer is priced as the assignment's; re.compile is not a model's compile.
    assert seconds(compiled_with("'my_optimizer'"), TRAIN.format("epochs=epochs")) == reference
    assert (
        seconds("PATTERN = re.compile('adam')\n" + compiled_with("'sgd'"), TRAIN.format("epochs=epochs")) == reference
    )
    # Two fit calls train twice; a lesson cell (its fit, its names) is never run by grading.
    twice = "def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):\n" \
            "    model.fit(X_train, y_train, epochs=epochs)\n    return model.fit(X_train, y_train, epochs=epochs)"
    assert seconds(compiled_with("'sgd'"), twice) > 1.8 * reference - 10
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs"),
                   lesson="history = model.fit(X_train, y_train, epochs=300)") == reference
    assert seconds(compiled_with("opt"), TRAIN.format("epochs=epochs"), lesson="opt = 'adam'") == reference
    # Absurd values are bounded; a cell with a syntax error counts for nothing.
    batch_of_one = seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs, batch_size=0"))  # as batch_size=1
    assert batch_of_one == seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs, batch_size=1")) > reference
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=10**9")) < 10**6
    assert seconds(compiled_with("'sgd'"), TRAIN.format("epochs=epochs"), "def normalize(x):\n    return x /") \
        == reference
    # Code Python's parser gives up on (RecursionError) is a cell that does not parse, not an exception.
    deep = "def normalize(x):\n    return x" + ".b" * 20_000
    adam = seconds(compiled_with("'adam'"), TRAIN.format("epochs=epochs"))
    assert seconds(compiled_with("'adam'"), TRAIN.format("epochs=epochs"), deep) == adam > reference


def test_the_estimate_prices_the_epochs_and_the_training_limit_the_batch_grades_with(tmp_path):
    """An instructor's config of 10 epochs: `epochs=epochs` trains 10, a notebook that writes 30 itself
    trains 30 and starts first; no training is priced past the batch's own training limit."""
    passed_on = notebook(tmp_path, "passed_on", compiled_with("'sgd'"), TRAIN.format("epochs=epochs"))
    written = notebook(tmp_path, "written", compiled_with("'sgd'"), TRAIN.format("epochs=30"))
    endless = notebook(tmp_path, "endless", compiled_with("'sgd'"), TRAIN.format("epochs=100_000"))
    assert estimated_seconds(passed_on, epochs=10) < estimated_seconds(written, epochs=10) \
        == estimated_seconds(passed_on) == estimated_seconds(written)
    assert [index for index, _ in start_order([passed_on, written], epochs=10)] == [1, 0]
    assert estimated_seconds(endless, training_limit=10) < estimated_seconds(written) < estimated_seconds(endless)


def test_start_order_is_longest_first_and_keeps_the_given_order_between_equals():
    names = ["ten_epochs_only", "passes_all", "not_json", "adam_instead_of_sgd", "optimizer_as_object"]
    order = start_order([SUBMISSIONS / f"{name}.ipynb" for name in names])
    assert [names[index] for index, _ in order] == [
        "adam_instead_of_sgd", "passes_all", "optimizer_as_object", "ten_epochs_only", "not_json",
    ]


def test_workers_start_the_longest_first_and_report_in_the_order_given(real_data_dir, monkeypatch, tmp_path):
    import autograder.batch.local as local
    from autograder.judge.report import GradeReport

    started: list[str] = []
    lock = threading.Lock()

    def graded_at_once(path, *args, **kwargs):
        with lock:
            started.append(path.stem)
        time.sleep(1.0 if path.stem == "adam_instead_of_sgd" else 0.1)  # the others end while it runs
        return GradeReport.ungraded(path, "not graded in this test")

    monkeypatch.setattr(local, "grade_submission", graded_at_once)
    names = ["not_json", "ten_epochs_only", "passes_all", "adam_instead_of_sgd"]
    paths = [SUBMISSIONS / f"{name}.ipynb" for name in names]
    reports = local.grade_notebooks(paths, data_dir=real_data_dir, workers=2, reuse=False)
    assert [Path(report.submission).stem for report in reports] == names
    assert set(started[:2]) == {"adam_instead_of_sgd", "passes_all"}
    assert started[2:] == ["ten_epochs_only", "not_json"]
    # A twin of the Adam notebook, with reuse: it would only wait for that training, so it starts after the others.
    started.clear()
    twin = tmp_path / "adam_instead_of_sgd.ipynb"
    shutil.copy(paths[3], twin)
    local.grade_notebooks([twin, *paths], data_dir=real_data_dir, workers=2)
    assert set(started[:2]) == {"adam_instead_of_sgd", "passes_all"}
    assert started[2:] == ["ten_epochs_only", "adam_instead_of_sgd", "not_json"]


def test_one_worker_grades_in_the_order_given(real_data_dir, monkeypatch):
    import autograder.batch.local as local
    from autograder.judge.report import GradeReport

    started: list[str] = []
    monkeypatch.setattr(local, "grade_submission", lambda path, *a, **k: started.append(path.stem) or
                        GradeReport.ungraded(path, "not graded in this test"))
    names = ["ten_epochs_only", "adam_instead_of_sgd", "passes_all"]
    local.grade_notebooks([SUBMISSIONS / f"{name}.ipynb" for name in names], data_dir=real_data_dir,
                          workers=1, reuse=False)
    assert started == names  # one worker: the order changes nothing, and the log reads as given


def test_a_dask_cluster_gets_the_longest_first_in_its_queue_and_as_priority(recording_cluster):
    from autograder.batch.cluster import grade_on_cluster
    from autograder.batch.progress import Progress

    names = ["ten_epochs_only", "passes_all", "adam_instead_of_sgd"]
    paths = [SUBMISSIONS / f"{name}.ipynb" for name in names]
    reports = grade_on_cluster(paths, "tcp://127.0.0.1:1", progress=Progress(len(paths), None))
    assert [Path(report.submission).stem for report in reports] == names
    submitted = [(path.stem, priority) for path, priority, _ in recording_cluster]
    assert [name for name, _ in submitted] == ["adam_instead_of_sgd", "passes_all", "ten_epochs_only"]
    assert [priority for _, priority in submitted] == sorted((priority for _, priority in submitted), reverse=True)


def test_with_reuse_a_twin_of_an_earlier_notebook_starts_after_the_trainings(tmp_path):
    names = ["adam_instead_of_sgd", "passes_all", "ten_epochs_only", "not_json"]
    paths = [SUBMISSIONS / f"{name}.ipynb" for name in names]
    twin = tmp_path / "adam_with_a_comment.ipynb"  # the same code as Python parses it: a twin
    nb = nbformat.read(paths[0], as_version=4)
    solution = next(cell for cell in nb.cells if "def compile_model" in cell.source)
    solution.source = "# my own comment\n\n" + solution.source.replace("=", " = ")
    nbformat.write(nb, twin)
    other = tmp_path / "passes_all_in_five_epochs.ipynb"  # a different training: not a twin
    nb = nbformat.read(paths[1], as_version=4)
    train = next(cell for cell in nb.cells if "def train_model" in cell.source)
    train.source = train.source.replace("epochs=epochs", "epochs=5")
    nbformat.write(nb, other)
    copy = tmp_path / "passes_all.ipynb"
    shutil.copy(paths[1], copy)
    batch = [*paths, twin, copy, other]
    labels = [*names, "adam twin", "passes_all copy", "five epochs"]

    def order(reuse):
        return [labels[index] for index, _ in start_order(batch, reuse=reuse)]

    assert order(False) == ["adam_instead_of_sgd", "adam twin", "passes_all", "passes_all copy",
                            "ten_epochs_only", "five epochs", "not_json"]
    assert order(True) == ["adam_instead_of_sgd", "passes_all", "ten_epochs_only", "five epochs",
                           "adam twin", "passes_all copy", "not_json"]
    # Code Python parses but cannot print (RecursionError in ast.dump) has no twin: its estimate stands.
    deep = tmp_path / "deep.ipynb"
    nb = nbformat.read(paths[1], as_version=4)
    train = next(cell for cell in nb.cells if "def train_model" in cell.source)
    train.source += "\nunused = x" + ".b" * 1500
    nbformat.write(nb, deep)
    assert [estimate for _, estimate in start_order([deep, deep], reuse=True)] == [estimated_seconds(paths[1])] * 2


def test_every_student_s_first_notebook_starts_before_anyone_s_second(tmp_path):
    """Twenty notebooks of mallory's, each claiming a training of 10,000 epochs in dead code, started before
    alice's and bob's, which a stopped run then left ungraded (helper-88 2)."""
    claim = "if False:\n    model.fit(None, None, epochs=10_000, batch_size=1)\n" + TRAIN.format("epochs=epochs")
    mallory = [notebook(tmp_path, f"mallory{index}", compiled_with("'sgd'"), claim) for index in range(20)]
    honest = [notebook(tmp_path, name, compiled_with("'sgd'"), TRAIN.format("epochs=epochs")) for name in "ab"]
    paths, owners = [*mallory, *honest], ["mallory"] * 20 + ["alice", "bob"]
    order = [index for index, _ in start_order(paths, owners=owners)]
    assert order[:3] == [0, 20, 21] and sorted(order[3:]) == list(range(1, 20))
    assert [index for index, _ in start_order(paths)][-2:] == [20, 21]  # one owner each: the longest first


def test_a_student_s_notebooks_are_theirs_however_they_are_named_or_nested(tmp_path):
    from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME
    from autograder.batch.local import expand_submissions, owners_of

    submitted = tmp_path / "submitted"
    for relative in [f"alice/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}", f"mallory/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}",
                     f"mallory/{ASSIGNMENT_ID}/copy.ipynb", f"mallory/{ASSIGNMENT_ID}/submitted/bob/x/{NOTEBOOK_NAME}"]:
        (submitted / relative).parent.mkdir(parents=True, exist_ok=True)
        (submitted / relative).write_text("{}")
    assert sorted(owners_of(expand_submissions([submitted]))) == ["alice", "mallory", "mallory", "mallory"]
    loose = [tmp_path / "carol.ipynb", tmp_path / "dave.ipynb"]
    for path in loose:
        path.write_text("{}")
    assert owners_of(expand_submissions(loose)) == ["carol", "dave"]
