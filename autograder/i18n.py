"""The language of what a student reads: every student-facing text goes through ``_``.

Messages are gettext messages: the English text is the message id, written in the code as
``_("the labels were divided by 255: ...")`` (with ``{name}`` fields filled by ``.format`` after
the lookup, never an f-string, so that a translator sees one sentence). The catalogues are
gettext ``.po`` files in ``autograder/locale/<lang>/LC_MESSAGES/autograder.po``, the format
translators' tools (Poedit, Weblate, Babel) read and write; ``scripts/messages.py`` extracts the
messages from the code with Babel and updates them. A catalogue is compiled when it is first used,
in memory, by Babel (its ``.mo`` form is never a file to go stale beside its ``.po``).

The language in effect is the context's (``speaking``): the command's ``--lang``, else the
notebook's own (``metadata.autograder.lang``, which the Chinese release carries), else the
locale's (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English
(``choose_language``). Instructor-facing text (the CLI's help, the class's CSV columns) stays
English.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import io
import os
import re
from pathlib import Path

DOMAIN = "autograder"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENGLISH = "en"
LANGUAGES = (ENGLISH, "zh_CN")
ALIASES = {"zh": "zh_CN", "zh_cn": "zh_CN", "zh_hans": "zh_CN", "zh_sg": "zh_CN", "en": ENGLISH, "en_us": ENGLISH,
           "en_gb": ENGLISH}
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
COMPILED_FILE = "messages.mo"  # the name ``compiled``'s catalogue has in a sandbox's scratch folder

_language: contextvars.ContextVar[str] = contextvars.ContextVar("autograder_language", default=ENGLISH)


def _(message: str) -> str:
    """``message`` (its English text) in the language in effect."""
    language = _language.get()
    if language == ENGLISH or not message:  # gettext's "" is the catalogue's header, never a message
        return message
    return catalogue(language).gettext(message)


def N_(message: str) -> str:
    """Marks a message kept in a constant for the catalogue; ``_`` translates it where it is used."""
    return message


def translated(message: str, fields: dict | None = None) -> str:
    """``message`` (a catalogue message kept as data, with its ``{name}`` fields) in the language in
    effect, its fields filled (in English where the translation's fields do not fit; as it came where
    neither does)."""
    for text in (_(message), message):
        try:
            return text.format(**(fields or {}))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            continue
    return message


def current_language() -> str:
    return _language.get()


@contextlib.contextmanager
def speaking(language: str | None):
    """Within: ``_`` speaks ``language`` (a name ``known_language`` accepts; None: as before)."""
    if language is None:
        yield
        return
    token = _language.set(known_language(language))
    try:
        yield
    finally:
        _language.reset(token)


def known_language(name: str) -> str:
    """``name`` as one of ``LANGUAGES`` (``zh``, ``zh-CN``, ``zh_CN.UTF-8`` are ``zh_CN``), or ValueError."""
    key = name.split(".")[0].split("@")[0].replace("-", "_").lower()
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"unknown language {name!r}: choose one of {', '.join(LANGUAGES)}")


def locale_language(environ=os.environ) -> str | None:
    """The locale's language where the kit speaks it: the first name the locale variables give
    (``LANGUAGE`` may list several, best first), skipping those the kit does not speak."""
    for variable in LOCALE_VARIABLES:
        for name in environ.get(variable, "").split(":"):
            if name in ("", "C", "POSIX") or name.startswith("C."):
                continue
            with contextlib.suppress(ValueError):
                return known_language(name)
            if name.lower().startswith("en"):
                return ENGLISH
    return None


def notebook_language(notebook) -> str | None:
    """The language a notebook says its text is in (``metadata.autograder.lang``), if the kit speaks it."""
    try:
        declared = notebook["metadata"]["autograder"]["lang"]
        return known_language(declared) if isinstance(declared, str) else None
    except (KeyError, TypeError, ValueError):
        return None


def choose_language(option: str | None = None, notebook=None, environ=os.environ) -> str:
    """``--lang``, else the notebook's own language, else the locale's, else English."""
    if option:
        return known_language(option)
    return notebook_language(notebook) or locale_language(environ) or ENGLISH


def catalogue_file(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


_loaded: dict[str, gettext.NullTranslations] = {}


def catalogue(language: str) -> gettext.NullTranslations:
    """``language``'s catalogue: the one ``load_compiled`` gave this process, else its ``.po`` file,
    compiled once."""
    if language not in _loaded:
        _loaded[language] = gettext.GNUTranslations(io.BytesIO(compiled(language)))
    return _loaded[language]


@functools.cache  # a batch gives it to each Chinese submission's child: compiled once per process
def compiled(language: str) -> bytes:
    """``language``'s catalogue in gettext's ``.mo`` form, compiled in memory by Babel from its ``.po``
    file (fuzzy entries left out, as gettext's compiler leaves them out). The sandbox's child is given
    it so: it reads it with the standard library alone, and never sees the ``.po`` file or Babel's."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(catalogue_file(language), "rb") as po:
        messages = read_po(po, locale=language, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, messages, use_fuzzy=False)
    return out.getvalue()


def load_compiled(language: str, data: bytes) -> None:
    """From now on ``language``'s messages in this process are those of ``data`` (``compiled``'s form)."""
    _loaded[known_language(language)] = gettext.GNUTranslations(io.BytesIO(data))


# --- back to English: the instructor's summaries of a class that read several languages ------------------------

FIELD = re.compile(r"\{(\w+)\}")
BACK_DEPTH = 4  # messages within messages: "training failed: {reason}", its reason a message of its own
BACK_CHARS = 4000  # a longer text is left as it came (the kit's own messages are far shorter)
# A field is read back as a message of its own only where that message has this many characters of
# the kit's words ("训练时间超过了评分程序允许的上限（{seconds} 秒），已被停止" has; "第 {index} 个单元格"
# has not): a student's words inside a field hold short phrases of the kit's by chance, sentences
# only on purpose, in their own row.
NESTED_WORDS = 10


def in_english(text: str, language: str) -> str:
    """A text the kit wrote to a student in ``language``, back in English where that language's
    catalogue reads it one way only: the message's English, its fields put back, a field back in
    English too where it is itself a message of the kit's (one that starts with the kit's words); a
    check's several problems (joined by "; ") each so, or none. Anything else is returned as it came.

    For what an instructor reads about a whole class (the class overview's most common mistakes), where
    one mistake must count once whichever language each student read it in. What a student's code
    wrote sits inside the fields and may hold the kit's own words, so a reading is taken only where it
    is sure (``_back``): each literal part of the translation found exactly once where it must be,
    every field filled, no other message that could have written the text; two English messages with
    one translation (a singular and its plural) are read back as neither. A text left as it came only
    costs the grouping of that row. Linear in the text's length (times the catalogue's size), which is
    bounded besides, so no text a student's code wrote into an error can stall the report.
    """
    text = str(text)
    if language == ENGLISH or language not in LANGUAGES or not text or len(text) > BACK_CHARS:
        return text
    whole = _back(text, language, BACK_DEPTH, kit_words_first=False)
    if "; " not in text:
        return text if whole is None else whole
    # The kit joins a check's problems with "; ", and a student's words may hold one too: each part must
    # then be a message of its own that starts with the kit's words, and the text read whole must not
    # say otherwise (a message refused as unsure, or one whose last field took the other parts in).
    parts = [_back(part, language, BACK_DEPTH, kit_words_first=True) for part in text.split("; ")]
    joined = None if None in parts else "; ".join(parts)
    if whole is None and _fits_some_message(text, language):
        return text
    if whole is not None and joined is not None and whole != joined:
        return text
    return whole or joined or text


def _fits_some_message(text: str, language: str) -> bool:
    """Whether some message of ``language`` (read back or not) fits the whole of ``text``."""
    for literals, names, _english in _translations(language):
        values = _fields(text, literals, names)
        if values is not None and all(values.values()):
            return True
    return False


def _back(text: str, language: str, depth: int, *, kit_words_first: bool) -> str | None:
    """``text`` read back as one of ``language``'s messages, or None where none, or more than one, reads it.

    Two messages fit one text where a student's words inside a field hold another message's words, and
    then neither is sure: the text stays as it came. So does a text whose words another message's could
    have written, were a student's words to repeat them (the reading of "{cell}抛出 {error}" where the
    finer "`{name}` 在你的单元格第 {line} 行（{code}）抛出 {error}：{summary}" has all its words in the text,
    one of them twice). The one exception is the kit's own nesting, a message that refines another
    (every word of "{cell}抛出 {error}" is in "`{name}` 抛出 {error}：{summary}", in order): whatever
    fits the finer one fits the coarser, so the finer one is taken."""
    if depth < 0:
        return None
    readings = []
    for literals, names, english in _translations(language):
        if english is None or (kit_words_first and (not literals[0] or len("".join(literals)) < NESTED_WORDS)):
            continue
        values = _fields(text, literals, names)
        if values is not None and all(values.values()):  # the kit fills every field it writes
            readings.append((literals, english, values))
    finest = [r for r in readings if all(r is other or _refines(r[0], other[0]) for other in readings)]
    if len(finest) != 1:
        return None
    literals, english, values = finest[0]
    if any(other != literals and not _refines(literals, other) and _words_in(text, other)
           for other, _names, _english in _translations(language)):
        return None
    for name, value in values.items():
        message = _back(value, language, depth - 1, kit_words_first=True)
        values[name] = value if message is None else message
    try:
        return english.format(**values)
    except (KeyError, IndexError, ValueError):
        return None


def _words_in(text: str, literals: tuple[str, ...]) -> bool:
    """Whether ``text`` holds a translation's literal parts where they would be, each anywhere after the
    one before (repeated or not): what that message could have written."""
    if not text.startswith(literals[0]) or not text.endswith(literals[-1]):
        return False
    if len(literals) == 1:
        return text == literals[0]
    position, last = len(literals[0]), len(text) - len(literals[-1])
    for part in literals[1:-1]:
        position = text.find(part, position)
        if position < 0:
            return False
        position += len(part)
    return position <= last


def _refines(finer: tuple[str, ...], coarser: tuple[str, ...]) -> bool:
    """Every literal part of ``coarser`` is found within one of ``finer``'s, in order, and ``finer`` has more."""
    if len("".join(finer)) <= len("".join(coarser)):
        return False
    joined, position = "\0".join(finer), 0
    for part in coarser:
        if part:
            position = joined.find(part, position)
            if position < 0:
                return False
            position += len(part)
    return True


def _fields(text: str, literals: tuple[str, ...], names: tuple[str, ...]) -> dict[str, str] | None:
    """The field values that make ``text`` a translation split into ``literals`` around ``names``, where
    there is exactly one such split; else None."""
    if not text.startswith(literals[0]):
        return None
    if not names:
        return {} if text == literals[0] else None
    position, values = len(literals[0]), {}
    for index, name in enumerate(names):
        after = literals[index + 1]
        if index == len(names) - 1:
            end = len(text) - len(after)
            if end < position or not text.endswith(after):
                return None
        else:
            end = text.find(after, position) if after else -1  # two fields side by side: no one split
            if end < 0 or text.find(after, end + 1) >= 0:
                return None
        if values.setdefault(name, text[position:end]) != text[position:end]:
            return None
        position = end + len(after)
    return values


@functools.cache
def _translations(language: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...], str | None], ...]:
    """``language``'s translated messages as (literal parts, field names, English); a translation two
    English messages share has None for English: it is read back as neither, yet a text it could have
    written is no other message's either."""
    from babel.messages.pofile import read_po

    with open(catalogue_file(language), "rb") as po:
        messages = read_po(po, locale=language, domain=DOMAIN)
    english: dict[str, set[str]] = {}
    for message in messages:
        if isinstance(message.id, str) and message.id and isinstance(message.string, str) and message.string \
                and not message.fuzzy:
            english.setdefault(message.string, set()).add(message.id)
    found = []
    for translation, ids in english.items():
        parts = FIELD.split(translation)
        found.append((tuple(parts[0::2]), tuple(parts[1::2]), next(iter(ids)) if len(ids) == 1 else None))
    return tuple(found)
