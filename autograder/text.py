"""Text a student may have influenced, made safe for each place the kit writes it.

A student names their folders, and their code makes the messages of the checks it fails (an exception's
text, a type's name). Whoever reads the kit's outputs must see that text as data: a terminal never
runs its escape sequences, a line of it is never taken for one of the kit's, a spreadsheet shows it as
written, a strict JSON reader accepts it, and right-to-left marks never reorder the words around it.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

# What a terminal, a spreadsheet or a text viewer acts on, or draws as nothing, instead of showing it: the
# controls (C0, C1, DEL), the format characters (direction marks, zero-width spaces and joiners, the soft
# hyphen, tag characters), the line and paragraph separators, surrogates, unassigned code points, and the
# other characters Unicode says to draw as nothing (variation selectors, Hangul fillers). Invisible, they
# would let a name pass for another's ("alice" and "alice" with a zero-width space) or a message reorder
# what surrounds it.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"}
_DRAWN_AS_NOTHING = [(0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
                     (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0x16FE4, 0x16FE4), (0xE0100, 0xE01EF)]


@functools.cache
def _unsafe_ranges() -> tuple[tuple[int, int], ...]:
    """Every code point above, as (first, last) ranges: Unicode's tables walked once per process (0.2 s)."""
    drawn_as_nothing = {code for low, high in _DRAWN_AS_NOTHING for code in range(low, high + 1)}
    category = unicodedata.category
    ranges, start = [], None
    for code in range(sys.maxunicode + 2):
        bad = code <= sys.maxunicode and (
            category(chr(code)) in _INVISIBLE_CATEGORIES
            and not (0x20000 <= code <= 0x3FFFF and code & 0xFFFF < 0xFFFE)  # newer ideographs, not noncharacters
            or code in drawn_as_nothing
        )
        if bad and start is None:
            start = code
        elif not bad and start is not None:
            ranges.append((start, code - 1))
            start = None
    return tuple(ranges)


@functools.cache
def _unsafe(keep: str) -> re.Pattern:
    """A pattern of every code point above, but those in ``keep``."""
    ranges = list(_unsafe_ranges())
    for code in map(ord, keep):
        ranges = [part for low, high in ranges
                  for part in (((low, code - 1), (code + 1, high)) if low <= code <= high else ((low, high),))
                  if part[0] <= part[1]]
    return re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges) + "]")


def printable(value) -> str:
    """``value`` as text any UTF-8 file can hold: the undecodable bytes of a file name (read as lone
    surrogates) are shown as ``\\udcXX`` instead of stopping the write or making a JSON file that strict
    readers refuse."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_text(value) -> str:
    """A path, a name or one line of a message as one line on a terminal: undecodable bytes as ``\\udcXX``
    and every control (escape sequences, carriage returns, newlines, direction marks) as ``\\xXX`` or
    ``\\uXXXX``, so that the text can neither forge a line nor drive the terminal."""
    return _unsafe("").sub(_escaped, printable(value))


def cell_text(value) -> str:
    """Text for a CSV cell: as ``terminal_text``, but its own lines and tabs kept (the cell is quoted)."""
    return _unsafe("\n\t").sub(_escaped, printable(value))


def has_control(text: str) -> bool:
    """Whether ``text`` holds anything ``terminal_text`` would escape."""
    return _unsafe("").search(text) is not None


# Blanks other than one space between words would make "alice" and "alice " two students.
_BLANKS = re.compile(r"(?! )[\s\u2800\u3164]|^ | $|  ")


def _joined_script(char: str) -> bool:
    """A letter or mark of the scripts whose words need joiners (Hebrew to Myanmar: Arabic, Indic, Sinhala)."""
    return 0x0590 <= ord(char) < 0x1100 and unicodedata.category(char)[0] in "LM"


def lookalike_id(name: str) -> bool:
    """Whether a student id could show as another's: invisible characters (but the joiners Persian, Sinhala
    or Malayalam names need between two of their letters), blanks other than single spaces between words,
    or a space at either end."""
    kept = "".join(char for index, char in enumerate(name) if not (
        char in "\u200c\u200d" and 0 < index < len(name) - 1
        and _joined_script(name[index - 1]) and _joined_script(name[index + 1])
    ))
    return has_control(kept) or _BLANKS.search(name) is not None
