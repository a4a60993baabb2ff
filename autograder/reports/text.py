"""The reports as text on a terminal or in a log: one line per check, with its status and points."""

from __future__ import annotations

import shutil

from autograder.i18n import N_, _
from autograder.text import cell_text, terminal_text


def html_text(value) -> str:
    """Text a student may have influenced, made safe to put in a page: its controls and direction marks
    shown as escapes (``autograder.text.cell_text``), then HTML-escaped."""
    import html

    return html.escape(cell_text(value))


# Translators: each word of a check's status, as wide on a terminal as the others (four columns).
STATUS = {"passed": N_("PASS"), "failed": N_("FAIL"), "not_done": N_("TODO"), "skipped": N_("SKIP")}


def status_key(result) -> str:
    """passed, failed, not_done (the function is still a stub) or skipped (not run), for a ``CheckResult``."""
    if result.skipped:
        return "skipped"
    if result.not_done:
        return "not_done"
    return "passed" if result.passed else "failed"


def status(result) -> str:
    """PASS, FAIL, TODO or SKIP (``status_key``), in the language in effect."""
    return _(STATUS[status_key(result)])


def format_check(result) -> str:
    points = f"{'-' if result.skipped else result.points}/{result.max_points}"
    return lines(result.message, f"  {status(result)}  {result.id:<19}{points:>7}  ", terminal_width())


CONTINUED = "    | "  # a message's own next line: marked, so that no line of it reads as one of the kit's


def columns(char: str) -> int:
    """How many columns a terminal may give ``char``, counted high: one for printable ASCII, two for anything
    else. Python's own tables are older than many terminals' (Unicode 16 made hexagrams and flags wide), and
    ambiguous widths are the terminal's to choose: counted high, the kit only wraps a little early."""
    return 1 if " " <= char <= "~" else 2


def terminal_width() -> int | None:
    """The columns of the terminal the reports go to; None where they go to a file or a pipe."""
    import sys

    if not (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()):
        return None
    return max(shutil.get_terminal_size((100, 24)).columns, 40)


def lines(text, start: str = "", width: int | None = None) -> str:
    """Text a student may have influenced, after ``start``, for a terminal: no control, and its own lines on
    lines marked as its own. On a terminal ``width`` columns wide, also each piece of a line longer than
    that, broken at a space where it can be: the terminal's own wrapping never puts a piece of it where
    the kit's lines start."""
    shown = []
    for index, line in enumerate(str(text).splitlines() or [""]):
        prefix, escaped = (start if index == 0 else CONTINUED), terminal_text(line)
        shown.extend(pieces(prefix, escaped, width) if width else [prefix + escaped])
    return "\n".join(shown)


def pieces(prefix: str, text: str, width: int) -> list[str]:
    """``prefix`` and ``text`` in lines of at most ``width`` columns, the later ones after ``CONTINUED``,
    broken at the last space where what follows it fits. In one pass: a student's line may be long."""
    done, chars, used, space = [], list(prefix), [0], -1
    for char in prefix:
        used.append(used[-1] + columns(char))
    floor = len(chars)
    for char in text:
        wide = columns(char)
        if used[-1] + wide > width and len(chars) > floor:
            if space > floor and len(CONTINUED) + used[-1] - used[space + 1] + wide <= width:
                done.append("".join(chars[:space]))  # at the space: what follows it goes on
                after = chars[space + 1:]
            else:
                done.append("".join(chars))
                after = []
            chars, used, space = list(CONTINUED) + after, [0], -1
            for kept in chars:
                used.append(used[-1] + columns(kept))
            floor = len(CONTINUED)
        if char == " ":
            space = len(chars)
        chars.append(char)
        used.append(used[-1] + wide)
    done.append("".join(chars))
    return done


def format_report(report) -> str:
    width = terminal_width()
    shown = [lines(terminal_text(report.submission) + f": {report.score}/{report.max_score}", width=width)]
    if report.error:
        shown.append(lines(report.error, "  not graded: ", width))
    else:
        shown.extend(format_check(result) for result in report.checks)
    shown.extend(lines(note, "  note: ", width) for note in report.notes)
    return "\n".join(shown)


def format_usage(usage: dict) -> str:
    parts = []
    if "seconds" in usage:
        parts.append(f"took {usage['seconds']:.1f} s")
    if "sandbox_peak_memory_mib" in usage:
        parts.append(f"sandbox peak memory {usage['sandbox_peak_memory_mib']:.0f} MiB")
    if isinstance(usage.get("alone_after_share_mib"), (int, float)):
        parts.append(f"graded alone, past its share of {usage['alone_after_share_mib']:.0f} MiB beside others")
    return "; ".join(parts)


def format_logged(report) -> str:
    """A finished report as a batch's log shows it: the report, then what grading it cost."""
    text = format_report(report)
    if report.usage:
        text += f"\n  {format_usage(report.usage)}"
    return text


def format_config(config) -> str:
    """The settings in effect (autograder.config.Config) as autograder.toml writes them, each with where it came
    from: the kit's default, the file, or a command-line option."""
    from autograder.config import LIMIT_KEYS
    from autograder.judge.checks import checks_table, max_score

    table = checks_table(config)
    rows = [("pass_mark", config.pass_mark, config.origin("pass_mark")),
            ("epochs", config.epochs, config.origin("epochs"))]
    if config.lang is not None:
        rows.append(("lang", config.lang, config.origin("lang")))
    rows.append(("[points]", None, None))
    rows += [(check.id, check.points, config.origin(f"points.{check.id}")) for check in table]
    rows += [("[limits]", None, None)]
    rows += [(key, config.limit(key), config.origin(f"limits.{key}")) for key in LIMIT_KEYS]
    lines = [f"# config file: {config.path if config.path else 'none found, so the defaults'}"]
    for key, value, origin in rows:
        text = key if value is None else f"{key} = {value!r}"
        lines.append(text if origin is None else f"{text:<28} # {origin}")
        if key == table[-1].id:
            lines.append(f"# total: {max_score(table)} points")
    return "\n".join(lines)
