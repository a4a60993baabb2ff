"""The Chinese lesson: generated from the English release and a translation of its markdown cells, never
written by hand, so that its code is the English notebook's, cell for cell (issue 15). Fast: no TensorFlow."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ENGLISH_RELEASE = REPO_ROOT / "assignments" / "fashion_mnist"
CHINESE_RELEASE = REPO_ROOT / "assignments" / "fashion_mnist_zh"
NOTEBOOK_NAME = "fashion_mnist_classifier.ipynb"
STALE = "the Chinese release is stale: run `make assignment` and commit assignments/fashion_mnist_zh/"


def _load_generator():
    path = REPO_ROOT / "scripts" / "localize_notebook.py"
    spec = importlib.util.spec_from_file_location("localize_notebook", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


localizer = _load_generator()


@pytest.fixture(scope="module")
def english():
    return nbformat.read(ENGLISH_RELEASE / NOTEBOOK_NAME, as_version=4)


@pytest.fixture(scope="module")
def chinese():
    return nbformat.read(CHINESE_RELEASE / NOTEBOOK_NAME, as_version=4)


@pytest.fixture(scope="module")
def translations():
    return localizer.load_translations()


def released_files(folder: Path) -> dict[str, Path]:
    return {
        str(path.relative_to(folder)): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not localizer._ignored(path.relative_to(folder))
    }


# --- the committed release is the generator's output -------------------------------------------------


def test_the_committed_chinese_notebook_is_what_the_generator_makes_today(english, chinese, translations):
    assert localizer.localize(english, translations) == chinese, STALE


def test_the_chinese_release_has_the_english_release_s_support_files(tmp_path):
    english_files, chinese_files = released_files(ENGLISH_RELEASE), released_files(CHINESE_RELEASE)
    assert set(chinese_files) == set(english_files), STALE
    for name, path in english_files.items():
        if name.endswith(".ipynb"):
            continue
        assert chinese_files[name].read_bytes() == path.read_bytes(), f"{name}: {STALE}"
    # What the generator writes from the committed English release is, byte for byte, what is committed.
    fresh = tmp_path / "fashion_mnist_zh"
    assert localizer.main([str(ENGLISH_RELEASE), str(fresh), "--strict"]) == 0
    for name, path in released_files(fresh).items():
        assert path.read_bytes() == chinese_files[name].read_bytes(), f"{name}: {STALE}"


def test_the_chinese_notebook_says_its_language_and_keeps_the_english_notebook_s_other_metadata(english, chinese):
    assert localizer.notebook_lang(chinese) == "zh_CN"
    assert chinese.metadata["autograder"] == {"lang": "zh_CN"}
    assert localizer.notebook_lang(english) == "en"
    others = {key: value for key, value in english.metadata.items() if key != "autograder"}
    assert {key: value for key, value in chinese.metadata.items() if key != "autograder"} == others
    assert (chinese.nbformat, chinese.nbformat_minor) == (english.nbformat, english.nbformat_minor)


# --- one source of code ------------------------------------------------------------------------------


def test_the_code_cells_are_the_english_notebook_s_one_by_one(english, chinese):
    assert len(chinese.cells) == len(english.cells)
    for index, (zh, en) in enumerate(zip(chinese.cells, english.cells)):
        where = f"cell {index} ({en.get('id')})"
        assert zh.cell_type == en.cell_type, where
        assert zh.get("id") == en.get("id"), where
        assert zh.metadata == en.metadata, where  # nbgrader's grade_id, points, lock and checksum
        if en.cell_type != "markdown":
            assert zh.source == en.source, where
            assert zh.get("outputs") == en.get("outputs") and zh.get("execution_count") == en.get("execution_count")


def test_the_generator_copies_code_cells_and_leaves_its_input_alone(english, translations):
    before = copy.deepcopy(english)
    localized = localizer.localize(english, translations)
    assert english == before
    assert [c.source for c in localized.cells if c.cell_type == "code"] == [
        c.source for c in english.cells if c.cell_type == "code"
    ]


# --- every markdown cell translated, every translation used -----------------------------------------


def test_every_markdown_cell_of_the_english_release_has_an_up_to_date_translation(english, translations):
    missing = localizer.untranslated(english, translations)
    assert not missing, (
        f"markdown cells without a translation in {localizer.translations_path().relative_to(REPO_ROOT)}: "
        f"{missing}; add them (with the English they translate) and run `make assignment`"
    )


def test_no_translation_is_unused(english, translations):
    assert not localizer.unused(english, translations), "translations whose cell is gone: remove them"


def test_the_translation_file_is_keyed_by_grade_id_else_cell_id_in_the_notebook_s_order(english):
    data = json.loads(localizer.translations_path().read_text(encoding="utf-8"))
    assert data["lang"] == "zh_CN"
    keys = [localizer.cell_key(cell) for cell in english.cells if cell.cell_type == "markdown"]
    assert list(data["cells"]) == keys
    for key, entry in data["cells"].items():
        assert set(entry) == {"en", "zh_CN"}, key
        assert all(isinstance(line, str) and "\n" not in line for line in entry["en"] + entry["zh_CN"]), key


def test_the_translation_file_is_not_copied_into_the_english_release():
    # nbgrader copies every file of the source notebook's folder into the release.
    assert localizer.translations_path().parent == REPO_ROOT / "solutions"
    assert not any(name.endswith(".json") for name in released_files(ENGLISH_RELEASE))


# --- no English sentence left in the Chinese text ---------------------------------------------------

WORD = r"[A-Za-z]+(?:['’-][A-Za-z]+)*"
ASCII_GAP = r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+"  # spaces and ASCII punctuation, not CJK text
ENGLISH_RUN = re.compile(rf"{WORD}(?:{ASCII_GAP}{WORD}){{3,}}")


def english_runs(markdown: str) -> list[str]:
    """Runs of 4+ English words once code, URLs, identifiers, names and numbers are taken out."""
    text = re.sub(r"```.*?```|~~~.*?~~~", " ", markdown, flags=re.S)  # fenced code
    text = re.sub(r"`[^`\n]*`", " ", text)  # code spans
    text = re.sub(r"\]\([^)]*\)|<?https?://[^\s>)]+>?", " ", text)  # link targets and URLs
    # Identifiers, dotted names and numbers; then names such as TensorFlow and MNIST. ASCII only, so that
    # the Chinese text around them stays and still breaks a run.
    text = re.sub(r"[\w.]*(?:[_\d]|\w\.\w|\(\))[\w.()]*", " ", text, flags=re.ASCII)
    text = re.sub(r"\b(?:[A-Za-z]*[a-z][A-Z][A-Za-z]*|[A-Z]{2,}[a-z]?)\b", " ", text, flags=re.ASCII)
    return [match.group(0) for match in ENGLISH_RUN.finditer(text)]


def test_no_chinese_markdown_cell_still_holds_an_english_sentence(chinese):
    for cell in chinese.cells:
        if cell.cell_type == "markdown":
            assert not english_runs(cell.source), f"cell {cell.id} is not fully translated"


def test_the_english_sentence_detector_finds_every_english_cell_and_spares_code(english):
    for cell in english.cells:
        if cell.cell_type == "markdown":
            assert english_runs(cell.source), f"the detector finds no English in English cell {cell.id}"
    assert not english_runs("调用 `model.fit(X_train, y_train, validation_data=(X_valid, y_valid))` 训练 30 个轮次")
    assert not english_runs("用 NumPy、Matplotlib 和 Keras：见 https://keras.io/api/models/sequential/ 与 CLASS_NAMES")
    assert not english_runs("```python\nmodel.compile(loss='sparse_categorical_crossentropy', optimizer='sgd')\n```")
    assert english_runs("**编写 `normalize(images)`**：Do not change the array you were given.")
    assert english_runs("训练 30 个轮次：train for `epochs` epochs with the validation set")


# --- any notebook derived from the lesson: a student's submission -----------------------------------


def test_a_submission_is_translated_and_keeps_its_code(tmp_path, english, translations):
    # A student's copy of today's release, one function written: the translations fit today's release only.
    submission, dest = tmp_path / "submission.ipynb", tmp_path / "twin.ipynb"
    work = copy.deepcopy(english)
    cell = next(c for c in work.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "normalize")
    cell.source = "def normalize(images):\n    return images / 255.0\n"
    nbformat.write(work, submission)
    assert localizer.main([str(submission), str(dest), "--lang", "zh_CN", "--strict"]) == 0
    source, twin = nbformat.read(submission, as_version=4), nbformat.read(dest, as_version=4)
    assert localizer.notebook_lang(twin) == "zh_CN"
    for original, translated in zip(source.cells, twin.cells, strict=True):
        if original.cell_type == "markdown":
            assert translated.source == translations["cells"][original.id]["text"]
        else:
            assert translated == original


def test_a_cell_without_a_translation_or_with_changed_english_is_left_as_it_is(english, translations):
    notebook = copy.deepcopy(english)
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    markdown[0].source += "\n\nA note the student added."
    added = nbformat.v4.new_markdown_cell("A cell added later.")
    notebook.cells.append(added)
    localized = localizer.localize(notebook, translations)
    assert localized.cells[0].source == markdown[0].source
    assert localized.cells[-1].source == "A cell added later."
    assert localized.cells[1].source == translations["cells"][markdown[1].id]["text"]
    assert len(localizer.untranslated(notebook, translations)) == 2


def test_strict_fails_when_a_markdown_cell_has_no_translation(tmp_path):
    data = json.loads(localizer.translations_path().read_text(encoding="utf-8"))
    data["cells"].pop(next(iter(data["cells"])))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    args = [str(ENGLISH_RELEASE / NOTEBOOK_NAME), str(tmp_path / "out.ipynb"), "--translations", str(partial)]
    assert localizer.main(args) == 0
    assert localizer.main([*args, "--strict"]) == 1


def test_a_folder_that_is_not_an_earlier_output_is_never_replaced(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / NOTEBOOK_NAME).write_bytes((ENGLISH_RELEASE / NOTEBOOK_NAME).read_bytes())
    assert localizer.main([str(ENGLISH_RELEASE), str(dest)]) == 2
    assert (dest / NOTEBOOK_NAME).read_bytes() == (ENGLISH_RELEASE / NOTEBOOK_NAME).read_bytes()
    # An earlier output is replaced whole: a file the English release no longer has goes away.
    out = tmp_path / "zh"
    assert localizer.main([str(ENGLISH_RELEASE), str(out)]) == 0
    (out / "left_over.py").write_text("")
    assert localizer.main([str(ENGLISH_RELEASE), str(out)]) == 0
    assert not (out / "left_over.py").exists()
