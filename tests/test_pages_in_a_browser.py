"""The feedback page and the class overview, opened in a real headless browser (Chromium through
Selenium and the system's chromedriver), at a laptop's width and a narrow one: every figure renders,
nothing runs off the side of the page, and the browser logs no error.

`make browser` (a prerequisite of `make test`) installs Debian's chromium and chromium-driver where
root and apt-get allow it; without them this test says what is missing and skips.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT_ID, NOTEBOOK_NAME
from autograder.judge.checks import CHECKS

WIDTHS = (1366, 800)  # a laptop's screen, and a browser window on half of a wider one
HEIGHT = 768
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")

# Messages as long as the checks write them, and longer: a traceback's line, a path and a list of
# shapes with no space to break at, which a table cell must wrap rather than widen the page for.
LONG_MESSAGE = (
    "`compile_model` has 3 mistakes: the loss is 'categorical_crossentropy' but the labels are integer classes "
    "0–9, so use 'sparse_categorical_crossentropy'; the optimizer is Adam, the lesson's is SGD "
    "(optimizer='sgd'); the metrics do not include 'accuracy'. Traceback (most recent call last): "
    "File \"/home/student/courses/deep-learning/submitted/a_student_with_a_long_name/fashion_mnist/"
    "fashion_mnist_classifier.ipynb\", line 42, in compile_model ValueError: "
    "[(None,28,28),(None,784),(None,300),(None,100),(None,10),(None,28,28),(None,784),(None,300),(None,100)] "
    + "x" * 300
)
MULTILINE_MESSAGE = "the first line\n    an indented second line\n\tand a tab\n" + "a very long line " * 40


def make_report(student: str, index: int, *, error: str | None = None, long: bool = False, nan: bool = False):
    """A report as the judge makes it, for ``student`` in nbgrader's layout, without training anything."""
    from autograder.judge.evidence import CheckResult
    from autograder.judge.report import GradeReport

    checks = []
    for number, check in enumerate(CHECKS):
        passed = error is None and (index + number) % 3 != 0
        message = "fine" if passed else f"{check.id} is wrong: got {index * 7 + number}, expected '{check.id}'"
        if long and number == 0:
            passed, message = False, LONG_MESSAGE
        if long and number == 1:
            passed, message = False, MULTILINE_MESSAGE
        checks.append(CheckResult(check.id, check.points if passed else 0, check.points, passed, message,
                                  not_done=error is None and number == len(CHECKS) - 1 and index % 4 == 0))
    epochs = 30
    history = {
        "loss": [1.0 / (epoch + 1 + index) for epoch in range(epochs)],
        "accuracy": [0.7 + 0.2 * epoch / epochs for epoch in range(epochs)],
        "val_loss": [1.1 / (epoch + 1 + index) for epoch in range(epochs)],
        "val_accuracy": [math.nan if nan else 0.68 + 0.2 * epoch / epochs for epoch in range(epochs)],
    }
    right = 700 + 25 * index
    confusion = [[right if i == j else (1000 - right) // 9 for j in range(10)] for i in range(10)]
    if nan:
        confusion[3][3] = math.nan  # a NaN test accuracy
    submission = f"submitted/{student}/{ASSIGNMENT_ID}/{NOTEBOOK_NAME}"
    return GradeReport(
        submission, sum(c.points for c in checks), 100, error, checks,
        [LONG_MESSAGE] if long else [f"graded on CPU in {3 + index} s"],
        history={} if error else history, confusion=None if error else confusion,
        usage={"seconds": 40.0 + 3 * index, "sandbox_peak_memory_mib": math.nan if nan else 900 + 20 * index},
        student=student,
    )


def a_class() -> list:
    """Ten students: most graded, one with long messages, one with NaN numbers, one not graded."""
    reports = [make_report(f"student{index:02d}", index) for index in range(7)]
    reports.append(make_report("a_student_with_a_rather_long_name_" + "x" * 60, 7, long=True))
    reports.append(make_report("nan", 8, nan=True))
    reports.append(make_report("broken", 9, error="the notebook is not valid JSON: " + LONG_MESSAGE))
    return reports


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """Every feedback page of the class, and its overview, written as `autograder grade` writes them."""
    from autograder.reports.class_report import write_class_report
    from autograder.reports.feedback import page_path, write_feedback

    folder = tmp_path_factory.mktemp("pages")
    reports = a_class()
    # The pages that differ (drawing a page's figures takes a second): a plain one, the long, the NaN, the broken.
    shown = [report for report in reports if report.student in ("student01", "nan", "broken")
             or report.student.startswith("a_student_with")]
    from autograder.batch.local import report_places

    write_feedback(shown, folder / "feedback")
    places = report_places(shown)
    found = {report.student: page_path(folder / "feedback", places[id(report)]) for report in shown}
    found["class overview"] = write_class_report(reports, folder / "class.html")
    return found


def first_found(names) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="Selenium is not installed: `make browser` or `pip install -e '.[test]'`")
    binary, driver = first_found(BROWSERS), first_found(DRIVERS)
    if binary is None or driver is None:
        missing = " and ".join(name for name, path in (("chromium", binary), ("chromedriver", driver)) if not path)
        pytest.skip(f"no headless browser: {missing} not found; `make browser` installs Debian's chromium and "
                    "chromium-driver where root and apt-get allow it")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--allow-file-access-from-files", f"--window-size={WIDTHS[0]},{HEIGHT}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        # The driver's path is given, so Selenium never tries to download one (CI has no internet).
        session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    except Exception as error:  # a browser that is there but cannot start (a container without /dev/shm...)
        pytest.skip(f"the headless browser {binary} would not start: {type(error).__name__}: {error}")
    yield session
    session.quit()


# What the page looks like to its reader, measured by the browser after everything has loaded.
MEASURE = """
const images = Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth, shown: img.getBoundingClientRect().width}));
const svgs = Array.from(document.querySelectorAll('svg')).map(svg => {
    const box = svg.getBoundingClientRect(); return {width: box.width, height: box.height}; });
const page = document.documentElement.clientWidth;
const wide = Array.from(document.body.querySelectorAll('*'))
    .filter(e => e.getBoundingClientRect().right > page + 0.5 || e.scrollWidth > e.clientWidth + 1)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')).slice(0, 5);
return {images, svgs, scroll: document.documentElement.scrollWidth, page, inner: window.innerWidth, wide};
"""


def open_page(browser, path: Path, width: int) -> dict:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    browser.get(path.as_uri())
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return document.readyState === 'complete' && "
                                   "Array.from(document.images).every(i => i.complete)"))
    return browser.execute_script(MEASURE)


def errors_logged(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def problems_of(name: str, shown: dict, errors: list[str]) -> list[str]:
    """What a reader of the page would see wrong, in words."""
    problems = [f"{name}: the image {image['alt']!r} does not load" for image in shown["images"]
                if not (image["complete"] and image["width"] > 0 and image["shown"] > 0)]
    problems += [f"{name}: an inline SVG has no size: {svg}" for svg in shown["svgs"]
                 if not (svg["width"] > 0 and svg["height"] > 0)]
    if shown["scroll"] > shown["page"]:
        problems.append(f"{name}: the page is {shown['scroll']} px wide, more than the window's {shown['page']} px "
                        f"(sticking out: {', '.join(shown['wide'])})")
    problems += [f"{name}: the browser logged {error}" for error in errors]
    return problems


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_renders_its_figures_fits_the_width_and_logs_no_error(browser, pages, width):
    errors_logged(browser)  # what an earlier test left in the log is not these pages'
    problems, seen = [], {}
    for name, path in pages.items():
        shown = open_page(browser, path, width)
        assert shown["inner"] == width, f"the browser's window is {shown['inner']} px wide, not {width}"
        problems += problems_of(name, shown, errors_logged(browser))
        seen[name] = [image["alt"] for image in shown["images"]]
    assert not problems, "\n".join(problems)
    # The test saw what it meant to: the figures of a trained model, of a NaN one, of the class.
    assert seen["student01"] == ["Learning curves", "Confusion matrix"]
    assert seen["nan"] == ["Learning curves", "Confusion matrix"]
    assert seen["broken"] == []
    assert seen["class overview"] == ["Score distribution", "Pass rate per check", "Test accuracy distribution",
                                      "Time and peak memory per submission"]


def test_a_broken_image_or_a_wide_table_is_caught(browser, tmp_path):
    """The measures can fail: a page with an image that does not load, a table wider than the window
    and a script's error."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><img alt='gone' src='data:image/png;base64,AAAA'>"
                    f"<table><tr><td>{'x' * 500}</td></tr></table><script>no_such_function()</script></body></html>")
    errors_logged(browser)
    problems = problems_of("broken", open_page(browser, page, WIDTHS[0]), errors_logged(browser))
    assert problems[0] == "broken: the image 'gone' does not load"
    assert problems[1].startswith("broken: the page is") and "td" in problems[1]
    assert len(problems) == 3 and "no_such_function is not defined" in problems[2]
