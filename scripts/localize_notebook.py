"""Make the lesson notebook, or any notebook derived from it, speak another language.

The code of the lesson exists once, in the English notebook. A translation file holds the text of its
markdown cells in another language, keyed by each cell's nbgrader ``grade_id`` where it has one, else by
the cell ``id``, together with the English that was translated. ``localize`` copies every code cell
unchanged, replaces a markdown cell's text when the translation has its key *and* the cell still holds
that English, leaves every other cell as it is, and records the language in the notebook's metadata,
``metadata["autograder"]["lang"]``, so that the grader can speak the notebook's own language.

    python scripts/localize_notebook.py SRC DEST [--lang zh_CN] [--translations FILE] [--strict]

SRC and DEST are notebooks, or folders: a folder is a released assignment, whose notebooks are localized
and whose other files (the self-check's ``conftest.py`` and test file) are copied as they are. A DEST folder
is replaced whole, as ``nbgrader generate_assignment --force`` replaces its own release, but only when it
is empty or an earlier output of this script. ``make assignment`` runs

    python scripts/localize_notebook.py assignments/fashion_mnist assignments/fashion_mnist_zh --strict

Standard library and nbformat only, so it runs without TensorFlow.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import shutil
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_ID = "fashion_mnist"
SOURCE_LANG = "en"
DEFAULT_LANG = "zh_CN"
# The notebook-level metadata key that says which language a notebook's text is in.
METADATA_KEY = "autograder"
LANG_FIELD = "lang"
# Never copied into a release: nbgrader's own ignore list, and what running the self-check leaves behind.
IGNORED = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache")


def translations_path(lang: str = DEFAULT_LANG) -> Path:
    """The lesson's translation file for ``lang``: beside the source notebook's folder, not in it,
    because nbgrader copies every file of ``solutions/fashion_mnist/`` into the English release."""
    return REPO_ROOT / "solutions" / f"{ASSIGNMENT_ID}.{lang}.json"


def load_translations(path: Path | str | None = None, lang: str = DEFAULT_LANG) -> dict:
    """Read a translation file: ``{"lang": ..., "cells": {key: {"en": [lines], lang: [lines]}}}``.

    Texts are stored as lists of lines (joined with newlines) so that a translator reads and diffs them
    line by line; the returned ``cells`` map each key to ``{"en": text, "text": text}``.
    """
    path = Path(path) if path is not None else translations_path(lang)
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("lang") != lang:
        raise ValueError(f"{path} holds {data.get('lang')!r} text, not {lang!r}")
    cells = {}
    for key, entry in data["cells"].items():
        cells[key] = {"en": _join(entry[SOURCE_LANG]), "text": _join(entry[lang])}
    return {"lang": lang, "cells": cells}


def _join(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "\n".join(text)


def _source(cell) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)  # a notebook file's list of lines


def cell_key(cell) -> str | None:
    """The cell's nbgrader ``grade_id`` where it has one, else its ``id`` (None for a cell with neither)."""
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or cell.get("id")


def notebook_lang(notebook) -> str | None:
    """The language a notebook says its text is in (the English lesson says "en"), or None where it says nothing."""
    return notebook.get("metadata", {}).get(METADATA_KEY, {}).get(LANG_FIELD)


def localize(notebook, translations: dict):
    """A copy of ``notebook`` with its markdown cells in ``translations["lang"]``; the input is not changed.

    ``notebook`` is an nbformat notebook, or the plain dict of a notebook file; ``translations`` is what
    ``load_translations`` returns.

    Code and raw cells are copied unchanged. A markdown cell is translated when the translations have its
    key and the cell still holds the English they were made from; any other cell (one a student edited,
    one added later) is left as it is. The copy's metadata says its language.
    """
    localized = copy.deepcopy(notebook)
    for cell in localized["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        entry = translations["cells"].get(cell_key(cell))
        if entry is not None and _source(cell) == entry["en"]:
            cell["source"] = entry["text"]
    localized.setdefault("metadata", {}).setdefault(METADATA_KEY, {})[LANG_FIELD] = translations["lang"]
    return nbformat.from_dict(localized)


def untranslated(notebook, translations: dict) -> list[str]:
    """Keys (or positions) of the markdown cells that ``localize`` would leave in English."""
    missing = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        key = cell_key(cell)
        entry = translations["cells"].get(key)
        if entry is None:
            missing.append(f"{key or f'cell {index}'} (no translation)")
        elif _source(cell) != entry["en"]:
            missing.append(f"{key} (its English changed since it was translated)")
    return missing


def unused(notebook, translations: dict) -> list[str]:
    """Translation keys that name no markdown cell of ``notebook``."""
    keys = {cell_key(cell) for cell in notebook["cells"] if cell["cell_type"] == "markdown"}
    return [key for key in translations["cells"] if key not in keys]


def localize_file(src: Path, dest: Path, translations: dict) -> list[str]:
    """Write the localized ``src`` to ``dest``; return the problems found (untranslated cells, unused keys)."""
    notebook = nbformat.read(src, as_version=4)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(localize(notebook, translations), dest)
    return [f"{src.name}: {problem}" for problem in untranslated(notebook, translations)] + [
        f"{src.name}: translation {key} is used by no markdown cell" for key in unused(notebook, translations)
    ]


def _ignored(path: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in path.parts for pattern in IGNORED)


def _replaceable(dest: Path) -> bool:
    """An empty folder, or one whose notebooks all say they were localized (an earlier output)."""
    notebooks = list(dest.rglob("*.ipynb"))
    if not notebooks:
        return not any(path for path in dest.rglob("*") if not _ignored(path.relative_to(dest)))
    for path in notebooks:
        try:
            if notebook_lang(nbformat.read(path, as_version=4)) in (None, SOURCE_LANG):
                return False
        except Exception:
            return False
    return True


def localize_folder(src: Path, dest: Path, translations: dict) -> list[str]:
    """Write a localized copy of the release folder ``src`` to ``dest``, which it replaces whole."""
    if dest.exists():
        if not dest.is_dir() or not _replaceable(dest):
            raise FileExistsError(f"{dest} exists and is not an earlier localized release: remove it yourself first")
        shutil.rmtree(dest)
    problems = []
    for path in sorted(src.rglob("*")):
        relative = path.relative_to(src)
        if _ignored(relative) or not path.is_file():
            continue
        target = dest / relative
        if path.suffix == ".ipynb":
            problems += localize_file(path, target, translations)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="an English notebook, or a released assignment's folder")
    parser.add_argument("dest", type=Path, help="where the localized notebook (or folder) goes")
    parser.add_argument("--lang", default=DEFAULT_LANG, help=f"the language to write (default: {DEFAULT_LANG})")
    parser.add_argument(
        "--translations",
        type=Path,
        help="the translation file (default: solutions/fashion_mnist.LANG.json)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when a markdown cell has no up-to-date translation or a translation is unused",
    )
    args = parser.parse_args(argv)

    try:
        translations = load_translations(args.translations, args.lang)
        if args.src.is_dir():
            problems = localize_folder(args.src, args.dest, translations)
        else:
            problems = localize_file(args.src, args.dest, translations)
    except (OSError, ValueError, KeyError) as error:  # a missing file, or one that is not what it should be
        print(f"localize_notebook: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"localize_notebook: {problem}", file=sys.stderr)
    return 1 if problems and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
