"""The students' messages in English and Simplified Chinese: a catalogue in step with the code, each
message translated, and the language chosen as the contract says (--lang, the notebook's, the locale's)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from autograder import i18n
from autograder.i18n import _, choose_language, known_language, speaking

REPO_ROOT = Path(__file__).resolve().parent.parent
FIELD = re.compile(r"\{[a-z_]*\}")
CJK = re.compile(r"[\u4e00-\u9fff]")


def catalogue(language: str = "zh_CN"):
    with open(i18n.catalogue_file(language), "rb") as po:
        return read_po(po, locale=language, domain=i18n.DOMAIN)


def test_the_catalogue_holds_every_message_of_the_code_and_no_other():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "messages.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_message_is_translated_with_the_same_fields():
    entries = [message for message in catalogue() if message.id]
    assert len(entries) > 50
    for message in entries:
        assert message.string and not message.fuzzy, f"untranslated: {message.id!r}"
        assert sorted(FIELD.findall(message.string)) == sorted(FIELD.findall(message.id)), message.id


def english_left(chinese: str) -> list[str]:
    """Runs of two or more English words between the Chinese of a message, code aside: back-quoted or
    quoted text, fields, identifiers and calls, numbers, and the names Keras and the lesson give things."""
    text = re.sub(r"`[^`]*`|'[^']*'|\{[a-z_]*\}", " ", chinese)
    runs = []
    for segment in CJK.split(text):
        words = [word.strip(",;:.") for word in re.findall(r"[A-Za-z][\w.()\[\]=/,;:-]*", segment)]
        prose = [word for word in words if not re.search(r"[_.()\[\]=/0-9]", word) and word not in NAMES]
        if len(prose) >= 2:
            runs.append(" ".join(prose))
    return runs


# Words a Chinese message keeps as they are: what Keras and the lesson call things.
NAMES = {"Keras", "SGD", "Flatten", "Dense", "History", "NaN", "softmax", "relu", "ReLU", "Softmax", "arg-max",
         "None", "loss", "accuracy", "imshow"}


def test_no_chinese_message_still_holds_an_english_sentence():
    for message in catalogue():
        if message.id:
            assert CJK.search(message.string), f"no Chinese in the translation of {message.id!r}"
            assert not english_left(message.string), (message.string, english_left(message.string))


def test_the_english_sentence_check_can_fail():
    assert english_left("模型 has too many layers") == ["has too many layers"]
    assert english_left("the model has {count} layers") == ["the model has layers"]  # left untranslated
    assert english_left("请用 keras.Input(shape=(28, 28)) 开头，记录 loss、accuracy") == []


def test_a_message_speaks_the_language_in_effect_in_this_thread_only():
    message = "the grader received no drawing of your figure"
    seen = {}

    def other_thread():
        seen["other"] = _(message)

    with speaking("zh_CN"):
        seen["here"] = _(message)
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == {"here": "评分程序没有收到你的图", "other": message}
    assert _(message) == message


@pytest.mark.parametrize("name, expected", [("zh", "zh_CN"), ("zh-CN", "zh_CN"), ("zh_CN.UTF-8", "zh_CN"),
                                            ("en_US.UTF-8", "en"), ("en", "en")])
def test_language_names_as_people_and_locales_write_them(name, expected):
    assert known_language(name) == expected


def test_the_language_is_the_option_s_else_the_notebook_s_else_the_locale_s_else_english():
    chinese = {"metadata": {"autograder": {"lang": "zh_CN"}}}
    english = {"metadata": {"autograder": {"lang": "en"}}}
    assert choose_language("en", chinese, {"LANG": "zh_CN.UTF-8"}) == "en"
    assert choose_language(None, chinese, {"LANG": "en_US.UTF-8"}) == "zh_CN"
    assert choose_language(None, english, {"LANG": "zh_CN.UTF-8"}) == "en"
    assert choose_language(None, {"metadata": {}}, {"LANGUAGE": "fr:zh_CN", "LANG": "C.UTF-8"}) == "zh_CN"
    assert choose_language(None, {"metadata": {"autograder": {"lang": "klingon"}}}, {"LANG": "C.UTF-8"}) == "en"
    with pytest.raises(ValueError, match="zh_CN"):
        choose_language("klingon")


def test_the_released_notebooks_say_which_language_they_speak():
    import nbformat

    for folder, language in (("fashion_mnist", "en"), ("fashion_mnist_zh", "zh_CN")):
        notebook = nbformat.read(REPO_ROOT / "assignments" / folder / "fashion_mnist_classifier.ipynb", as_version=4)
        assert i18n.notebook_language(notebook) == language


def a_student(release: str, folder: Path) -> Path:
    """The released notebook of ``release`` with ``normalize`` written wrong (the pixels unscaled), the rest left
    as stubs: its checks need no training."""
    import nbformat

    notebook = nbformat.read(REPO_ROOT / "assignments" / release / "fashion_mnist_classifier.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "normalize":
            cell.source = cell.source.replace("raise NotImplementedError()", "return images.astype('float32')")
    path = folder / release / "fashion_mnist_classifier.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)
    return path


def test_a_chinese_notebook_is_graded_in_chinese_with_the_same_points_and_lang_overrides_it(tmp_path, real_data_dir):
    """Graded as a class is, through the sandbox: the judge's messages and those the sandbox's child writes
    (a stub's "not done yet", a cell's error) speak the notebook's language; in-process with --lang too."""
    from autograder.batch.local import grade_notebooks
    from autograder.config import Config

    notebooks = [a_student("fashion_mnist", tmp_path), a_student("fashion_mnist_zh", tmp_path)]
    english, chinese = grade_notebooks(notebooks, data_dir=real_data_dir, sandbox=True)
    assert english.error is None and chinese.error is None, (english.error, chinese.error)
    normalize, build = ([next(c for c in report.checks if c.id == name) for report in (english, chinese)]
                        for name in ("normalize", "model_architecture"))
    assert normalize[0].message.startswith("the images are not scaled")
    assert normalize[1].message.startswith("图像没有缩放")
    assert build[0].message.startswith("not done yet: `build_model` still raises NotImplementedError")
    assert build[1].message.startswith("尚未完成：`build_model` 仍然抛出 NotImplementedError")
    assert not english_left(build[1].message) and not english_left(chinese.checks[-1].message)
    assert [(c.id, c.points, c.passed) for c in english.checks] == [(c.id, c.points, c.passed) for c in chinese.checks]
    assert english.score == chinese.score
    assert (english.lang, chinese.lang) == ("en", "zh_CN"), "the pages and Gradescope's results speak it"
    overridden = grade_notebooks(notebooks[1:], data_dir=real_data_dir, sandbox=False,
                                 config=Config().with_lang("en", "--lang"))[0]
    assert [c.message for c in overridden.checks if c.id in ("normalize", "model_architecture")] == [
        normalize[0].message, build[0].message]
    assert overridden.lang == "en"


def test_the_messages_of_a_cell_and_of_the_probes_speak_the_language_in_effect(tmp_path):
    """What the student's own code did wrong, as the sandbox's child and the self-check write it."""
    import nbformat

    from autograder.sandbox.probe import Prober, describe_exception
    from autograder.submission.notebook import run_cells

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def normalize(images):\n    return 1 / 0", metadata={"nbgrader": {
            "solution": True, "grade_id": "normalize"}}),
        nbformat.v4.new_code_cell("def build_model(:\n    pass", metadata={"nbgrader": {
            "solution": True, "grade_id": "build_model"}}),
    ])
    path = tmp_path / "fashion_mnist_classifier.ipynb"
    nbformat.write(notebook, path)
    with speaking("zh_CN"):
        loaded = run_cells(path)
        (syntax,) = loaded.cell_errors
        prober = Prober({"normalize": loaded.function("normalize")}, loaded.cell_errors)
        prober.run("normalize", lambda: prober.call("normalize", None))
        prober.run("build_model", lambda: prober.call("build_model"))
        stub = describe_exception("plot_samples", NotImplementedError())
    assert syntax.startswith("第 2 个单元格（`build_model`）第 1 行有语法错误："), syntax
    raised, undefined = prober.artifacts.errors["normalize"], prober.artifacts.errors["build_model"]
    assert raised.startswith("`normalize` 在你的单元格第 2 行（return 1 / 0）抛出 ZeroDivisionError："), raised
    assert undefined.startswith("`build_model` 没有定义（第 2 个单元格"), undefined
    assert stub == "尚未完成：`plot_samples` 仍然抛出 NotImplementedError；请换成你的代码"
    for message in (syntax, raised, undefined, stub):  # Python's own words aside
        assert not english_left(message.replace("invalid syntax", "").replace("division by zero", "")), message
    assert describe_exception("plot_samples", NotImplementedError()).startswith("not done yet")


def test_the_grader_s_notes_speak_the_language_in_effect():
    from autograder.batch.steps import lint_notes
    from autograder.judge.report import REUSED_NOTE

    notebook = REPO_ROOT / "tests" / "submissions" / "test_set_not_normalized.ipynb"
    (english,) = lint_notes(notebook)
    with speaking("zh_CN"):
        (chinese,) = lint_notes(notebook)
        reused = _(REUSED_NOTE)
    assert "on test images that were not normalized" in english and "cell " in english
    assert CJK.search(chinese) and "normalize(test_images)" in chinese and "not normalized" not in chinese
    assert CJK.search(reused) and "--trainings" in reused


def test_a_notebook_that_cannot_be_graded_is_told_why_in_the_student_s_language(tmp_path, real_data_dir):
    """The reason a submission was not graded reaches the student too (the feedback page, Gradescope)."""
    from autograder.batch.local import grade_notebooks
    from autograder.config import Config
    from autograder.sandbox.launch import SandboxRun

    empty, damaged = tmp_path / "empty.ipynb", tmp_path / "damaged.ipynb"
    empty.write_text("")
    damaged.write_text('{"cells": [')
    reports = grade_notebooks([empty, damaged], data_dir=real_data_dir, config=Config().with_lang("zh_CN", "--lang"))
    assert [report.error for report in reports] == [
        "文件是空的：请在 Jupyter 中保存笔记本后重新提交",
        "不是有效的 JSON（第 1 行第 12 列：Expecting value）；文件已损坏或不是笔记本："
        "请提交 Jupyter 保存的 .ipynb 文件",
    ]
    assert [report.lang for report in reports] == ["zh_CN", "zh_CN"]
    killed = SandboxRun(returncode=-9, seconds=1.0, timed_out=False, stderr_tail="", isolation="bwrap")
    with speaking("zh_CN"):
        assert killed.fault == "评分进程被信号 SIGKILL 终止（内存不足？）"
    assert killed.fault == "the grading process was killed by SIGKILL (out of memory?)"


def test_no_module_that_speaks_through_underscore_also_uses_it_as_a_throwaway_name():
    """``_, x = ...`` in a function makes ``_`` local there, and every ``_("...")`` in that function
    raises UnboundLocalError: in the sandbox's child, that is a lost check."""
    import ast

    shadowed = []
    for path in sorted((REPO_ROOT / "autograder").rglob("*.py")):
        tree = ast.parse(path.read_text())
        speaks = any(isinstance(node, ast.ImportFrom) and node.module == "autograder.i18n"
                     and any(alias.name == "_" for alias in node.names) for node in ast.walk(tree))
        if speaks:
            shadowed += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}" for node in ast.walk(tree)
                         if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store)]
    assert not shadowed, shadowed


def test_the_child_saves_its_results_speaking_the_student_s_language(tmp_path, monkeypatch):
    """A model Keras cannot save is said when the child writes its results (``write_artifacts``): that
    too is the student's language, not English after the probes' Chinese."""
    import json

    import autograder.data.inputs as inputs
    import autograder.sandbox.probe as probe
    import autograder.submission.notebook as notebook
    from autograder.sandbox import child
    from autograder.sandbox.artifacts import Artifacts, read_artifacts

    class Unsavable:
        def save(self, path):
            raise ValueError("no")

    class Loaded:
        cell_errors: list = []

        def function(self, name):
            return None

    monkeypatch.setattr(inputs.ProbeInputs, "load", classmethod(lambda cls, folder: None))
    monkeypatch.setattr(notebook, "run_cells", lambda path, cell_seconds: Loaded())
    monkeypatch.setattr(probe, "collect", lambda *args, **kwargs: Artifacts(models={"built": Unsavable()}))
    (tmp_path / "messages.mo").write_bytes(i18n.compiled("zh_CN"))
    (tmp_path / "sandbox.json").write_text(json.dumps({
        "limits": {"cell_seconds": 5, "training_seconds": 5}, "epochs": 2, "lang": "zh_CN"}))
    assert child.main(tmp_path) == 0
    problem = read_artifacts(tmp_path / "artifacts").errors["model:built"]
    assert CJK.search(problem) and "could not be saved" not in problem, problem


def test_a_fault_of_the_grader_on_a_notebook_is_told_in_the_batch_s_language(tmp_path, real_data_dir, monkeypatch):
    from autograder.batch import steps
    from autograder.batch.local import grade_notebooks
    from autograder.config import Config

    def fails(path, batch, content=None):
        raise RuntimeError("a bug of the grader's")

    monkeypatch.setattr(steps, "grade_steps", fails)
    notebook = a_student("fashion_mnist", tmp_path)
    (report,) = grade_notebooks([notebook], data_dir=real_data_dir, config=Config().with_lang("zh_CN", "--lang"))
    assert report.error == "评分程序处理这个笔记本时出错：RuntimeError: a bug of the grader's"
    assert report.lang == "zh_CN" and report.score == 0


def test_every_translated_message_reads_back_to_its_english_or_stays_as_it_came():
    """The class overview's reading back (``in_english``) over the whole catalogue, its fields filled with
    numbers or words: never a wrong English text, and nearly every message read back (a singular and
    its plural sharing one translation, or a literal the fields repeat, stay as they came)."""
    import re

    from babel.messages.pofile import read_po

    from autograder.i18n import _, catalogue_file, in_english, speaking

    with open(catalogue_file("zh_CN"), "rb") as po:
        messages = [m for m in read_po(po, locale="zh_CN") if m.id and m.string]
    read_back = tried = 0
    for fill in (lambda i: str(7 + i), lambda i: f"w{i}x"):
        for message in messages:
            values = {name: fill(i) for i, name in enumerate(re.findall(r"\{(\w+)\}", message.id))}
            chinese, english = message.string.format(**values), message.id.format(**values)
            back = in_english(chinese, "zh_CN")
            assert back in (english, chinese), (message.id, back)
            read_back += back == english
            tried += 1
    assert read_back / tried > 0.85, f"{read_back} of {tried} read back"
    # A student's "; " in the last words after an exit status: read whole, "{epochs}为 {what}" could have
    # written it; read part by part, the exit status's field would take the kit's words in.
    with speaking("zh_CN"):
        fault = _("the grading process exited with status {status} before it finished").format(status=1)
        words = "oops; " + _("the grader's trainer stopped while training this model") + "（x"
        stopped = _("{fault} (its last words: {words})").format(fault=fault, words=words)
    assert in_english(stopped, "zh_CN") in (stopped, "the grading process exited with status 1 before it finished "
                                                      f"(its last words: {words})")
    # Fields holding what students write (their errors, their stderr): the kit's own words and marks in it.
    pieces = ["：", "为 ", "（", "）", "应为 10", "抛出 ", "ValueError: bad", "`a`", "; ", "第 3 个", "个单元格"]
    generator = random.Random(7)
    for _ in range(3000):
        message = generator.choice(messages)
        names = re.findall(r"\{(\w+)\}", message.id)
        values = {name: "".join(generator.choices(pieces, k=generator.randint(1, 4))) for name in names}
        chinese, english = message.string.format(**values), message.id.format(**values)
        assert in_english(chinese, "zh_CN") in (english, chinese), (message.id, values)
