"""An HTML feedback page per submission: each check with its message, the learning curves and the
confusion matrix on the test set, as images inside the page (one file to hand a student or a TA)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from autograder.data import CLASS_NAMES


def png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_figure(matrix: list[list[int]]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(10), CLASS_NAMES, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(10), CLASS_NAMES, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > peak / 2 else "black")
    ax.set_title("Confusion matrix on the 10,000 test images")
    fig.tight_layout()
    return fig


def feedback_html(report) -> str:
    from autograder.grading import status
    from autograder.plots import learning_curves

    rows = "\n".join(
        f"<tr class='{status(r).lower()}'><td>{status(r)}</td><td>{html.escape(r.id)}</td>"
        f"<td>{r.points}/{r.max_points}</td><td>{html.escape(r.message)}</td></tr>"
        for r in report.checks
    )
    images = []
    if report.history:
        images.append(("Learning curves", png(learning_curves(report.history, title="Your model's learning curves"))))
    if report.confusion:
        images.append(("Confusion matrix", png(confusion_figure(report.confusion))))
    figures = "\n".join(
        f"<figure><img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'><figcaption>{html.escape(alt)}</figcaption></figure>"
        for alt, data in images
    )
    error = f"<p class='error'>Could not be graded: {html.escape(report.error)}</p>" if report.error else ""
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {html.escape(Path(report.submission).name)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:.3em .6em;vertical-align:top}}
tr.pass td:first-child{{color:green}}tr.fail td:first-child,tr.todo td:first-child{{color:#b00}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(Path(report.submission).name)}: <span class="score">{report.score}</span>/{report.max_score}</h1>
{error}{notes}
<table><thead><tr><th></th><th>check</th><th>points</th><th>message</th></tr></thead><tbody>
{rows}
</tbody></table>
{figures}
</body></html>
"""


def write_feedback(reports, folder: Path) -> list[Path]:
    from autograder.reports import atomic_write

    written = []
    for report in reports:
        path = folder / Path(report.submission).stem / "feedback.html"
        atomic_write(path, feedback_html(report))
        written.append(path)
    return written
