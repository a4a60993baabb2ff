"""One HTML page about a whole class: the scores, each check's pass rate, the most common mistakes,
the test accuracies and what each submission cost to grade, written from the same grade reports
as every other output.

Every number may be NaN or infinite (a student's training, a stored result read back): figures
draw what is finite and the page says how many were left out. Everything a student can influence
(names, paths, messages) is HTML-escaped.
"""

from __future__ import annotations

import math
import re
import statistics
import warnings
from collections import Counter
from pathlib import Path, PurePosixPath

from autograder.assignment import SUBMITTED
from autograder.config import DEFAULT_PASS_MARK
from autograder.i18n import in_english
from autograder.judge.checks import CHECKS
from autograder.reports.feedback import figure_html
from autograder.reports.plots import as_number, number_text
from autograder.reports.text import html_text

MISTAKES_SHOWN = 3  # per check
# What differs between two students' copies of one mistake: numbers and quoted values.
DETAILS = re.compile(r"'[^']*'|\"[^\"]*\"|[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)


def mistake_kind(message: str) -> str:
    """A failing message with its numbers and quoted values blanked, so that one mistake made by
    several students counts as one: "test accuracy 0.61, below 0.85" → "test accuracy …, below …"."""
    return DETAILS.sub("…", str(message))


def test_accuracy(report) -> float | None:
    """The accuracy on the test set the grader measured (``GradeReport.test_accuracy``); None without one."""
    return report.test_accuracy


def finite(values) -> list[float]:
    return [value for value in (as_number(v) for v in values) if math.isfinite(value)]


def histogram(values, title: str, xlabel: str, bins, marker: float | None = None):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.hist(values, bins=bins, color="#4a7ab5", edgecolor="white")
    if marker is not None:
        ax.axvline(marker, color="#b00", linestyle="--", label=f"minimum {marker:g}")
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("submissions")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def distribution_html(values, title: str, xlabel: str, bins, marker=None) -> str:
    """A histogram of the finite values, and a line counting those that are not drawn."""
    drawn = finite(values)
    missing = len(values) - len(drawn)
    note = f"<p class='note'>{missing} of {len(values)} not a finite number: not drawn.</p>" if missing else ""
    if not drawn:
        return f"<p class='note'>No {html_text(xlabel)} to draw.</p>{note}"
    return figure_html(title, lambda: histogram(drawn, title, xlabel, bins, marker)) + note


def graded_reports(reports) -> list:
    return [report for report in reports if not report.error]


def pass_rates(reports, table=CHECKS) -> list[tuple]:
    """Per check of ``table`` (the class's: ``checks_table`` of its config): (check, passed, graded) over
    the graded submissions."""
    graded = graded_reports(reports)
    rows = []
    for check in table:
        results = [r for report in graded for r in report.checks if r.id == check.id]
        rows.append((check, sum(bool(r.passed) for r in results), len(results)))
    return rows


def pass_rate_figure(rows):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ids = [check.id for check, _, _ in rows]
    rates = [100 * passed / graded if graded else 0 for _, passed, graded in rows]
    ax.barh(ids[::-1], rates[::-1], color="#4a7ab5")
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded submissions that pass")
    ax.set_title("Pass rate per check")
    fig.tight_layout()
    return fig


def checks_html(reports, table=CHECKS) -> str:
    rows = pass_rates(reports, table)
    table = "\n".join(
        f"<tr><td>{html_text(check.id)}</td><td>{check.points}</td><td>{passed}/{graded}</td>"
        f"<td>{f'{100 * passed / graded:.0f} %' if graded else '–'}</td></tr>"
        for check, passed, graded in rows
    )
    return (f"<table><thead><tr><th>check</th><th>points</th><th>passed</th><th>pass rate</th></tr></thead>"
            f"<tbody>\n{table}\n</tbody></table>\n"
            + figure_html("Pass rate per check", lambda: pass_rate_figure(rows)))


def common_mistakes(reports) -> dict[str, list[tuple[str, int, str]]]:
    """Per check: its most common failing messages, as (kind, count, an example message), most common first."""
    found: dict[str, Counter] = {check.id: Counter() for check in CHECKS}
    examples: dict[tuple[str, str], str] = {}
    for report in graded_reports(reports):
        for result in report.checks:
            if result.passed or result.skipped or result.id not in found:
                continue
            message = in_english(result.message, report.lang)  # the page is the instructor's, in English
            kind = mistake_kind(message)
            found[result.id][kind] += 1
            examples.setdefault((result.id, kind), message)
    return {
        check_id: [(kind, count, examples[(check_id, kind)]) for kind, count in counter.most_common(MISTAKES_SHOWN)]
        for check_id, counter in found.items() if counter
    }


def mistakes_html(reports) -> str:
    mistakes = common_mistakes(reports)
    if not mistakes:
        return "<p>No check failed.</p>"
    rows = []
    for check_id, kinds in mistakes.items():
        for index, (kind, count, example) in enumerate(kinds):
            name = html_text(check_id) if index == 0 else ""
            rows.append(f"<tr><td>{name}</td><td class='count'>{count}</td><td>{html_text(kind)}</td>"
                        f"<td class='example'>{html_text(example)}</td></tr>")
    return ("<table class='mistakes'><thead><tr><th>check</th><th>students</th><th>mistake</th><th>an example</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def errors_html(reports) -> str:
    errors = Counter(mistake_kind(in_english(report.error, report.lang)) for report in reports if report.error)
    if not errors:
        return ""
    items = "".join(f"<li>{count} × {html_text(kind)}</li>" for kind, count in errors.most_common())
    return f"<h2>Could not be graded</h2><ul class='errors'>{items}</ul>"


def usage_figure(seconds, memory):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.scatter(seconds, memory, color="#4a7ab5")
    ax.set_xlabel("seconds to grade")
    ax.set_ylabel("sandbox peak memory (MiB)")
    ax.set_title("Time and peak memory per submission")
    fig.tight_layout()
    return fig


def owner_of(report) -> tuple[str, str] | None:
    """Where a report lies in nbgrader's layout: its ``submitted`` folder and its student's folder name in
    it (two sections' students of one name are two students); None outside that layout."""
    from autograder.batch.local import nbgrader_place, student_of

    key = PurePosixPath(student_of(report)).parts
    path = Path(report.submission).absolute()
    try:
        anchor = path.parents[2] if nbgrader_place(path, student_of(report)) else path.parents[len(key) - 1]
    except IndexError:
        return None
    return (str(anchor), key[0]) if key and anchor.name == SUBMITTED else None


def counted_reports(reports) -> tuple[list, list]:
    """The reports the class's figures count, and those listed apart. In nbgrader's layout a student
    counts once: by their notebook of the assignment's name (what the gradebook records), else by the
    first of theirs by name; the other notebooks in their folder (scratch copies, or twenty copies of one
    message) are listed, never weighed as classmates. Elsewhere each notebook is a student."""
    from autograder.reports.gradebook import official_reports

    official = {id(report) for found in official_reports(reports).values() for report in found}
    students: dict[tuple[str, str], list] = {}
    for report in reports:
        owner = owner_of(report)
        if owner is not None:
            students.setdefault(owner, []).append(report)
    apart = set()
    for found in students.values():
        chosen = next((r for r in found if id(r) in official), None) or min(found, key=lambda r: str(r.submission))
        apart.update(id(r) for r in found if r is not chosen)
    return [r for r in reports if id(r) not in apart], [r for r in reports if id(r) in apart]


def submissions_table(reports) -> str:
    from autograder.batch.local import student_of

    rows = []
    for report in reports:
        accuracy = test_accuracy(report)
        cells = (student_of(report), number_text(report.score), "–" if accuracy is None else number_text(accuracy),
                 number_text(report.usage.get("seconds", "–")),
                 number_text(report.usage.get("sandbox_peak_memory_mib", "–")), report.error or "")
        rows.append("<tr>" + "".join(f"<td>{html_text(str(cell))}</td>" for cell in cells) + "</tr>")
    return ("<table class='submissions'><thead><tr><th>student</th><th>score</th><th>test accuracy</th>"
            "<th>seconds</th><th>peak memory (MiB)</th><th>error</th></tr></thead><tbody>\n" + "\n".join(rows)
            + "\n</tbody></table>")


def submissions_html(reports) -> str:
    pairs = [(as_number(r.usage.get("seconds")), as_number(r.usage.get("sandbox_peak_memory_mib"))) for r in reports]
    pairs = [(s, m) for s, m in pairs if math.isfinite(s) and math.isfinite(m)]
    figure = (figure_html("Time and peak memory per submission", lambda: usage_figure(*zip(*pairs)))
              if pairs else "<p class='note'>No time and memory to draw.</p>")
    return figure + submissions_table(reports)


def summary_html(reports, apart=()) -> str:
    scores = finite(report.score for report in reports)
    graded = len(graded_reports(reports))
    line = f"{len(reports)} submissions: {graded} graded, {len(reports) - graded} could not be graded."
    if scores:
        line += f" Mean score {statistics.fmean(scores):.1f}, median {statistics.median(scores):g}."
    if apart:
        line += f" {len(apart)} more notebooks in these students' folders are listed at the end, not counted."
    return f"<p class='summary'>{html_text(line)}</p>"


def apart_html(apart) -> str:
    if not apart:
        return ""
    return ("<h2>Not counted</h2><p class='note'>More notebooks in students' folders: a student counts once, by "
            "their notebook of the assignment's name (as in the gradebook), else by the first of theirs by name."
            "</p>" + submissions_table(apart))


def class_report_html(reports, title: str = "Class overview", pass_mark: float = DEFAULT_PASS_MARK,
                      table=CHECKS) -> str:
    """The page; ``pass_mark`` and ``table`` (the checks and their points): those the class was graded with
    (its config's), the pass mark marked on the accuracies."""
    from autograder.judge.checks import MAX_SCORE

    reports, apart = counted_reports(reports)
    top = max([r.max_score for r in reports if isinstance(r.max_score, int)] or [MAX_SCORE])  # the config's points
    accuracies = [a for a in map(test_accuracy, reports) if a is not None]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;overflow-wrap:anywhere}}
td,th{{padding:.3em .6em;vertical-align:top;text-align:left}}table{{border-collapse:collapse}}
tbody tr:nth-child(odd){{background:#f4f4f4}}img{{max-width:100%}}.note,.figure-error{{color:#555}}</style>
</head><body>
<h1>{html_text(title)}</h1>
{summary_html(reports, apart)}
<h2>Scores</h2>
{distribution_html([r.score for r in reports], "Score distribution", "score", range(0, top + 6, 5))}
<h2>Checks</h2>
{checks_html(reports, table)}
<h2>Most common mistakes</h2>
{mistakes_html(reports)}
{errors_html(reports)}
<h2>Test accuracy</h2>
{distribution_html(accuracies, "Test accuracy distribution", "test accuracy", [i / 40 for i in range(41)], pass_mark)}
<p class='note'>The dashed line: the pass mark {html_text(number_text(pass_mark))}, test_accuracy's bar.</p>
<h2>Submissions</h2>
{submissions_html(reports)}
{apart_html(apart)}
</body></html>
"""


def write_class_report(reports, path: Path, config=None) -> Path:
    """The page of ``reports``, graded with ``config`` (autograder.config.Config; None: the defaults)."""
    from autograder.batch.store import atomic_write
    from autograder.judge.checks import checks_table

    pass_mark = config.pass_mark if config is not None else DEFAULT_PASS_MARK
    with warnings.catch_warnings():  # matplotlib's, about a student's odd numbers: the page says what it left out
        warnings.simplefilter("ignore")
        text = class_report_html(list(reports), pass_mark=pass_mark, table=checks_table(config))
    atomic_write(Path(path), text)
    return Path(path)
