"""An HTML feedback page per submission, naming its student: each check with its message, the learning curves and the
confusion matrix on the test set, as images inside the page (one file to hand a student or a TA).

The numbers on a page come from a student's training, so any of them may be NaN or infinite: they
are written as text ("NaN", "inf"), a figure that cannot be drawn leaves its page without it and
with a line saying why, and a page that cannot be written never stops the others.

A page speaks the language its report was graded in (``GradeReport.lang``), as its check messages
do, and so does the text drawn inside its figures where the grader's machine has a font for it
(``autograder.reports.plots.figure_language``); where it has none, that text is English rather than
boxes, and each figure's caption says in the page's language what it shows.
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from pathlib import Path

from autograder.data.fashion_mnist import CLASS_NAMES
from autograder.i18n import _, speaking
from autograder.reports.plots import as_number, number_text
from autograder.reports.text import html_text


def png(fig) -> str:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_counts(matrix) -> list[list[float]]:
    """The matrix as 10 × 10 floats (NaN for what is not a number), or ValueError saying what is wrong."""
    if isinstance(matrix, (str, bytes)) or not hasattr(matrix, "__iter__"):
        raise ValueError(f"it is not a table of counts ({type(matrix).__name__})")
    rows = [row for row in matrix]
    shape = [len(row) if hasattr(row, "__len__") and not isinstance(row, (str, bytes)) else None for row in rows]
    if len(rows) != len(CLASS_NAMES) or any(width != len(CLASS_NAMES) for width in shape):
        widths = sorted({"?" if width is None else str(width) for width in shape}) or ["0"]
        raise ValueError(f"it has {len(rows)} rows of {' or '.join(widths)} counts, not 10 rows of 10")
    return [[as_number(count) for count in row] for row in rows]


def count_text(count: float) -> str:
    if math.isfinite(count) and count == int(count) and abs(count) < 1e15:
        return str(int(count))
    return number_text(count)


def confusion_figure(matrix: list[list[int]]):
    from matplotlib.figure import Figure

    counts = confusion_counts(matrix)
    finite = [abs(c) for row in counts for c in row if math.isfinite(c)]
    peak = max(finite, default=0.0) or 1.0
    # Shades from each count's share of the largest (a NaN or an infinity is left blank): no
    # arithmetic on the counts themselves, which a broken matrix could make overflow.
    shades = [[min(max(c / peak, 0.0), 1.0) if math.isfinite(c) else math.nan for c in row] for row in counts]
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax.imshow(shades, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(10), CLASS_NAMES, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(10), CLASS_NAMES, fontsize=8)
        ax.set_xlabel(_("predicted class"))
        ax.set_ylabel(_("true class"))
        for i, row in enumerate(counts):
            for j, count in enumerate(row):
                dark = math.isfinite(shades[i][j]) and shades[i][j] > 0.5
                ax.text(j, i, count_text(count), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        ax.set_title(_("Confusion matrix on the 10,000 test images"))
        fig.tight_layout()
    return fig


def figure_html(alt: str, draw, failed: str | None = None) -> str:
    """The figure as an image inside the page; if it cannot be drawn, a line saying why instead
    (``failed``, a message with the ``{reason}``; by default an English one, for the instructors' pages)."""
    from autograder.reports.plots import figure_language

    try:
        with figure_language():  # made and saved in one language, with the font that draws it
            data = png(draw())
    except Exception as error:  # a figure must never cost a student their page
        failed = failed or f"The {alt.lower()} could not be drawn: {{reason}}"
        said = failed.format(reason=f"{type(error).__name__}: {error}")
        return f"<p class='figure-error'>{html_text(said)}</p>"
    return (f"<figure><img alt='{html_text(alt)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html_text(alt)}</figcaption></figure>")


def curves_html(history) -> str:
    from autograder.reports import plots

    parts = [figure_html(_("Learning curves"),
                         lambda: plots.learning_curves(history, title=_("Your model's learning curves")),
                         _("The learning curves could not be drawn: {reason}"))]
    try:
        notes = plots.curve_notes(history)
    except Exception as error:
        notes = [_("the values of the curves could not be read: {error}").format(
            error=f"{type(error).__name__}: {error}")]
    if notes:
        items = "".join(f"<li>{html_text(note)}</li>" for note in notes)
        parts.append(f"<ul class='curve-notes'>{items}</ul>")
    return "\n".join(parts)


# The page's language as HTML names it (its lang attribute), for each language the kit speaks.
HTML_LANG = {"en": "en", "zh_CN": "zh-CN"}
STATUS_CLASS = {"passed": "pass", "failed": "fail", "not_done": "todo", "skipped": "skip"}


def feedback_html(report) -> str:
    """The page of ``report``, in the language it was graded in."""
    with speaking(report.lang):
        return page_html(report)


def page_html(report) -> str:
    from autograder.batch.local import student_of
    from autograder.reports.text import status, status_key

    rows = "\n".join(
        f"<tr class='{STATUS_CLASS[status_key(r)]}'><td>{html_text(status(r))}</td><td>{html.escape(str(r.id))}</td>"
        f"<td>{number_text(r.points)}/{number_text(r.max_points)}</td>"
        f"<td class='message'>{html_text(r.message)}</td></tr>"
        for r in report.checks
    )
    figures = []
    if report.history:
        figures.append(curves_html(report.history))
    if report.confusion is not None and not (isinstance(report.confusion, list) and not report.confusion):
        figures.append(figure_html(_("Confusion matrix"), lambda: confusion_figure(report.confusion),
                                   _("The confusion matrix could not be drawn: {reason}")))
    error = ""
    if report.error:
        error = f"<p class='error'>{html_text(_('Could not be graded: {error}').format(error=report.error))}</p>"
    notes = "".join(f"<p class='note'>{html_text(n)}</p>" for n in report.notes)
    name = html_text(Path(str(report.submission)).name)
    student = html_text(student_of(report))
    title = html_text(_("Feedback for {student}").format(student=student_of(report)))
    heading = html.escape(_("Feedback for {student}")).replace(
        "{student}", f'<span class="student">{student}</span>')
    headings = "".join(f"<th>{html.escape(text)}</th>" for text in ("", _("check"), _("points"), _("message")))
    return f"""<!DOCTYPE html>
<html lang="{HTML_LANG.get(report.lang, 'en')}"><head><meta charset="utf-8"><title>{title}: {name}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;overflow-wrap:anywhere}}
td{{padding:.3em .6em;vertical-align:top}}td.message{{white-space:pre-wrap}}
tr.pass td:first-child{{color:green}}tr.fail td:first-child,tr.todo td:first-child{{color:#b00}}img{{max-width:100%}}
.figure-error{{color:#b00}}</style>
</head><body>
<h1>{heading}</h1>
<h2>{name}: <span class="score">{number_text(report.score)}</span>/{number_text(report.max_score)}</h2>
{error}{notes}
<table><thead><tr>{headings}</tr></thead><tbody>
{rows}
</tbody></table>
{chr(10).join(figures)}
</body></html>
"""


def page_path(folder: Path, place) -> Path:
    """``<folder>/<student>/<assignment>/<notebook>.html`` (``place``: ``autograder.batch.local.report_places``):
    where nbgrader's ``release_feedback`` takes a student's page from when ``folder`` is the course's
    ``feedback`` folder."""
    return folder / place.parent / f"{place.name}.html"


# What nbgrader's collect leaves beside a submitted notebook and its release_feedback reads beside the page.
NBGRADER_RECEIPTS = ("timestamp.txt", "submission_secret.txt")
RECEIPT_BYTES = 4096


def receipt_text(data: bytes) -> str | None:
    """A receipt's text as nbgrader writes it (a timestamp, a secret of URL-safe base64: one line, printable),
    else None: nbgrader's release_feedback logs the timestamp and names a file after the secret."""
    from autograder.text import has_control

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if has_control(text.removesuffix("\n")) else text


def copy_receipts(report, page: Path) -> list[str]:
    """Beside the page of a notebook in nbgrader's layout: the submission's ``timestamp.txt`` and
    ``submission_secret.txt``, as nbgrader's generate_feedback leaves them. The submission's folder
    is the student's: it is opened once, reached as the notebook is (``open_submitted``: no link a
    student could make), and each receipt is read relative to it as a small regular file, never
    through a link. Returns why a receipt was not copied, for each
    one that could not be (the page is written all the same)."""
    import os

    from autograder.batch.local import nbgrader_place, student_of
    from autograder.batch.store import atomic_write
    from autograder.errors import ArtifactError, ArtifactMissing
    from autograder.sandbox.bounded_files import read_bounded
    from autograder.submission.paths import open_submitted

    if nbgrader_place(report.submission, student_of(report)) is None:
        return []
    folder = Path(report.submission).parent
    try:  # the folder reached as the notebook was, never through a link a student could make
        fd = open_submitted(folder, folder=True)
    except FileNotFoundError:
        return []  # a report of a notebook no longer there: nothing to copy
    except OSError as error:  # a link put in the folder's place, among others
        return [f"{folder}: the receipts were not copied: {error.strerror}"]
    skipped = []
    try:
        for name in NBGRADER_RECEIPTS:
            try:
                data = read_bounded(name, RECEIPT_BYTES, dir_fd=fd)
            except ArtifactMissing:
                continue  # not collected by nbgrader: nothing for release_feedback to match
            except ArtifactError as error:
                skipped.append(f"{folder / name}: not copied: {error}")
                continue
            text = receipt_text(data)
            if text is None:
                skipped.append(f"{folder / name}: not copied: it holds what nbgrader never writes there "
                               "(bytes that are not UTF-8, or controls)")
                continue
            atomic_write(page.parent / name, text)
    finally:
        os.close(fd)
    return skipped


def write_feedback(reports, folder: Path) -> list[Path]:
    """A page per submission (with nbgrader's receipts beside it). One that cannot be made or written
    never stops the others: they are all written, and then ``OutputError`` names those that are missing.
    A receipt that cannot be copied costs only itself: a warning names it."""
    import sys

    from autograder.reports.formats import write_each
    from autograder.text import terminal_text

    def page(report, path: Path) -> str:
        text = feedback_html(report)
        for skipped in copy_receipts(report, path):
            print(f"autograder: warning: {terminal_text(skipped)}", file=sys.stderr, flush=True)
        return text

    return write_each(reports, lambda report, place: page_path(folder, place), page, "feedback pages")
