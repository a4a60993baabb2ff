"""Figures the kit draws for people: learning curves, and the language their text is drawn in.

A figure speaks the language in effect where this machine has a font that draws it
(``figure_language``: for Chinese, a font such as Debian's ``fonts-wqy-microhei``, which ``make``
installs where it can); without one it speaks English, never boxes in place of characters.

A history comes from a student's training (or from a stored result, where a non-finite number
is written as the string "NaN", "Infinity" or "-Infinity"), so any value may be NaN, infinite,
too large for an axis, or not a number at all. The curves draw what is finite and say, in the
legend and in ``curve_notes`` (which the feedback page prints), which values were not drawn.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

from autograder.i18n import ENGLISH, _, current_language, speaking

# Fonts with the characters of Simplified Chinese, as Debian's packages install them (fonts-wqy-microhei,
# fonts-wqy-zenhei, fonts-noto-cjk), best first: files, so that a font installed after matplotlib built
# its font cache is found all the same.
CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)

# A value beyond this is finite but off any useful chart, and matplotlib's tick and margin
# arithmetic overflows near 1e308: such values are named, not drawn.
DRAWABLE = 1e12
MAX_RANGES = 6  # epoch ranges named per kind of value; the rest are counted
# A series' name is the student's metric's, of any length (Keras takes any), and matplotlib lays out each
# character of a legend: names are cut, and series beyond the first few are counted, not drawn.
MAX_NAME = 60
MAX_SERIES = 12  # the lesson's history has 4


def number_text(value) -> str:
    """A number as a person reads it: "NaN", "inf", "-inf" for the non-finite ones."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}"


def as_number(value) -> float:
    """A history's value as a float: "Infinity" and "NaN" (strict JSON's spelling) are read back,
    an integer too large for a float is infinite, and anything that is not a number is NaN."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, (float, str)) or hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return math.nan
    return math.nan


def epoch_ranges(epochs: list[int]) -> str:
    """[2] → "epoch 2"; [1, 2, 3, 7] → "epochs 1–3, 7", in the language in effect."""
    ranges: list[list[int]] = []
    for epoch in epochs:
        if ranges and epoch == ranges[-1][1] + 1:
            ranges[-1][1] = epoch
        else:
            ranges.append([epoch, epoch])
    text = ", ".join(f"{a}–{b}" if b > a else f"{a}" for a, b in ranges[:MAX_RANGES])
    named = (_("epochs {ranges}") if len(epochs) > 1 else _("epoch {ranges}")).format(ranges=text)
    if len(ranges) > MAX_RANGES:
        return _("{epochs} and {count} more").format(epochs=named, count=len(ranges) - MAX_RANGES)
    return named


def _series(history) -> list[tuple[str, list[float], str | None]]:
    """Each series: its name, its values to draw (NaN where not drawn) and a note on what was not
    drawn, in the language in effect."""
    if not isinstance(history, Mapping):
        return [("history", [], _("not a table of named series ({kind}): not drawn").format(
            kind=type(history).__name__))]
    found = []
    series = list(history.items())
    for name, values in series[:MAX_SERIES]:
        name = str(name)
        name = name if len(name) <= MAX_NAME else name[:MAX_NAME - 1] + "…"
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            found.append((name, [], _("not a list of values ({value}): not drawn").format(
                value=number_text(values)[:40])))
            continue
        values = list(values)
        if not values:
            found.append((name, [], _("no values")))
            continue
        drawn: list[float] = []
        missing: dict[str, list[int]] = {}  # what was not drawn → at which epochs
        for epoch, raw in enumerate(values, start=1):
            value = as_number(raw)
            if not math.isfinite(value):
                missing.setdefault(number_text(value), []).append(epoch)
                drawn.append(math.nan)
            elif abs(value) > DRAWABLE:
                missing.setdefault(_("{value} (too large to draw)").format(value=f"{value:g}"), []).append(epoch)
                drawn.append(math.nan)
            else:
                drawn.append(value)
        note = ", ".join(_("{what} at {epochs}").format(what=what, epochs=epoch_ranges(epochs))
                         for what, epochs in missing.items())
        found.append((name, drawn, _("{notes} (not drawn)").format(notes=note) if note else None))
    if len(series) > MAX_SERIES:
        found.append(("", [], _("{count} more series: not drawn").format(count=len(series) - MAX_SERIES)))
    return found


def curve_notes(history) -> list[str]:
    """One line per series with values that are not drawn, in the language in effect (the feedback
    page's): "val_loss: inf at epochs 3–30 (not drawn)"."""
    return [f"{name}: {note}" if name else note for name, _values, note in _series(history) if note]


@functools.cache
def cjk_font(files: tuple[str, ...] = CJK_FONT_FILES) -> str | None:
    """The family name of the first of ``files`` that matplotlib can use, added to its fonts; None if none."""
    from matplotlib import font_manager

    for path in files:
        if not os.path.isfile(path):
            continue
        try:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
        except Exception:  # a damaged font file is no font
            continue
    return None


@contextlib.contextmanager
def figure_language():
    """Within: the figures made and saved speak the language in effect if a font here draws it, else English."""
    import matplotlib

    language = current_language()
    font = cjk_font() if language != ENGLISH else None
    if language == ENGLISH:
        yield
    elif font is None:
        with speaking(ENGLISH):
            yield
    else:
        families = [font, *matplotlib.rcParams["font.sans-serif"]]
        with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": families}):
            yield


def _label(text: str) -> str:
    # Matplotlib reads $...$ as mathematics, and a malformed formula fails when the figure is drawn.
    return text.replace("$", r"\$")


def learning_curves(history: dict[str, list[float]], title: str | None = None):
    """A figure of every series in a Keras ``History.history`` against the epoch number, its text in
    the language in effect (see ``figure_language``).

    Draws what is finite; a NaN, an infinity or a value too large for the axis leaves a gap in its
    curve and is named in the legend.
    """
    # matplotlib.figure.Figure needs no GUI backend, so this works on a headless grader.
    from matplotlib.figure import Figure

    series = _series(history)
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    drawn = [value for _name, values, _note in series for value in values if math.isfinite(value)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, values, note in series:
            label = _label(f"{name}: {note}" if name and note else note or name)
            ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
        ax.set_xlabel(_("epoch"))
        ax.set_ylim(min([0.0, *drawn]), max([1.0, *drawn]))
        ax.grid(True)
        if series:
            ax.legend(fontsize="small" if any(note for _name, _values, note in series) else None)
        ax.set_title(_("Learning curves") if title is None else title)
        fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
