"""Keep the message catalogues in step with the code: extract every ``_("...")`` with Babel and
update each language's ``.po`` (new messages added untranslated, changed ones marked fuzzy, gone
ones dropped), as ``pybabel extract`` and ``pybabel update`` would.

    python scripts/messages.py          # update autograder/locale/*/LC_MESSAGES/autograder.po
    python scripts/messages.py --check  # exit 1, naming them, if a catalogue is not in step

A translator then edits the ``.po`` file (Poedit, Weblate or a text editor); the kit compiles it
when it is first used (``autograder.i18n.catalogue``).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from autograder.i18n import DOMAIN, ENGLISH, LANGUAGES, catalogue_file  # noqa: E402

PACKAGE = REPO_ROOT / "autograder"


def template() -> Catalog:
    """Every message of the code, where it is used."""
    found = Catalog(domain=DOMAIN, project="fashion-mnist-autograder")
    for filename, line, message, comments, context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python")], keywords={"_": None, "N_": None},
        comment_tags=("Translators:",),
    ):
        found.add(message, None, [(f"autograder/{filename}", line)], auto_comments=comments, context=context)
    return found


def updated(language: str, messages: Catalog) -> bytes:
    path = catalogue_file(language)
    with open(path, "rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    catalog.update(messages, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    out = io.BytesIO()
    write_po(out, catalog, width=100, sort_output=True, omit_header=False, no_location=True)
    return out.getvalue()


def comparable(text: bytes) -> bytes:
    """The catalogue without the header lines that change with the day and Babel's version."""
    return re.sub(rb'"(POT-Creation-Date|Generated-By): [^"]*"\n', b"", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether every catalogue is in step")
    args = parser.parse_args()
    messages = template()
    stale = []
    for language in LANGUAGES:
        if language == ENGLISH:
            continue
        path = catalogue_file(language)
        text = updated(language, messages)
        if comparable(path.read_bytes()) != comparable(text):
            stale.append(path)
            if not args.check:
                path.write_bytes(text)
    if args.check and stale:
        print("not in step with the code (run python scripts/messages.py):", *map(str, stale), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
