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


def in_english(text: str) -> str:
    """A text the kit wrote to a student, in English: where a translated catalogue message matches it
    whole, that message's English, its fields put back (each one back in English too); a check's
    several problems (joined by "; ") one by one. What matches no translation is returned as it was.

    For what an instructor reads about a whole class (the class overview's most common mistakes), where
    one mistake must count once whichever language each student read it in. Linear in the text's
    length: each translation's literal parts are found left to right, never backtracking, so a long
    message a student's code wrote into an error cannot stall the report; a field whose value holds
    the literal that follows it is left as it came, which costs grouping, never a wrong word.
    """
    return _in_english(str(text), BACK_DEPTH)


def _in_english(text: str, depth: int) -> str:
    if depth < 0 or not text or text.isascii():
        return text
    for literals, names, english in _translations():
        values = _fields(text, literals, names)
        if values is None:
            continue
        try:
            return english.format(**{name: _in_english(value, depth - 1) for name, value in values.items()})
        except (KeyError, IndexError, ValueError):
            continue
    parts = text.split("; ")
    if len(parts) > 1:
        return "; ".join(_in_english(part, depth - 1) for part in parts)
    return text


def _fields(text: str, literals: tuple[str, ...], names: tuple[str, ...]) -> dict[str, str] | None:
    """The field values that make ``text`` of a translation split into ``literals`` around ``names``,
    or None: each field ends where the next literal part is first found."""
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
        elif not after:  # two fields side by side: where one ends is anyone's guess
            return None
        else:
            end = text.find(after, position)
            if end < 0:
                return None
        if values.setdefault(name, text[position:end]) != text[position:end]:
            return None
        position = end + len(after)
    return values


@functools.cache
def _translations() -> tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...]:
    """Every catalogue's translated messages as (literal parts, field names, English), the most
    literal text first so that "训练失败：{reason}" is tried before "{what}：{error}"."""
    from babel.messages.pofile import read_po

    found = []
    for language in LANGUAGES:
        if language == ENGLISH:
            continue
        with open(catalogue_file(language), "rb") as po:
            messages = read_po(po, locale=language, domain=DOMAIN)
        for message in messages:
            if not isinstance(message.id, str) or not message.id or not message.string or message.fuzzy:
                continue
            parts = FIELD.split(message.string)
            literals, names = tuple(parts[0::2]), tuple(parts[1::2])
            if "".join(literals).isascii():  # no word of the language's own: it would match English text
                continue
            found.append((literals, names, message.id))
    found.sort(key=lambda entry: -len("".join(entry[0])))
    return tuple(found)
