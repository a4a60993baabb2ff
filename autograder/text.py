"""Text a student may have influenced, made safe for each place the kit writes it.

A student names their folders, and their code makes the messages of the checks it fails (an exception's
text, a type's name). Whoever reads the kit's outputs must see that text as data: a terminal never
runs its escape sequences, a line of it is never taken for one of the kit's, a spreadsheet shows it as
written, a strict JSON reader accepts it, and right-to-left marks never reorder the words around it.
"""

from __future__ import annotations

import re

# What a terminal, a spreadsheet or a text viewer acts on instead of showing: C0 and C1 controls, DEL, the
# line and paragraph separators, and the marks that set a run of text's direction (Unicode's bidi controls).
_DIRECTION = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029{_DIRECTION}]")
# The same without the newline and the tab, which a message's own lines keep inside a quoted CSV cell.
CONTROL_IN_CELL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u2028\\u2029{_DIRECTION}]")


def printable(value) -> str:
    """``value`` as text any UTF-8 file can hold: the undecodable bytes of a file name (read as lone
    surrogates) are shown as ``\\udcXX`` instead of stopping the write or making a JSON file that strict
    readers refuse."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(value) -> str:
    """A path, a name or one line of a message as one line on a terminal: undecodable bytes as ``\\udcXX``
    and every control (escape sequences, carriage returns, newlines, direction marks) as ``\\xXX`` or
    ``\\uXXXX``, so that the text can neither forge a line nor drive the terminal."""
    return CONTROL.sub(_escaped, printable(value))


def cell_text(value) -> str:
    """Text for a CSV cell: as ``terminal_text``, but its own lines and tabs kept (the cell is quoted)."""
    return CONTROL_IN_CELL.sub(_escaped, printable(value))


def has_control(text: str) -> bool:
    """Whether ``text`` holds anything ``terminal_text`` would escape."""
    return CONTROL.search(text) is not None or printable(text) != text
