"""An instructor's settings for the assignment, in one TOML file (``autograder.toml``) read with ``tomllib``.

The file sets the pass mark of ``test_accuracy``, the epochs of the training graded, the points of
any check and any limit; what it
leaves out keeps the kit's default. It is found as ``--config FILE``, else ``autograder.toml`` in the
current folder, else beside ``nbgrader_config.py`` in the nearest folder above (the course folder).
The command line's limit options override the file. ``Config.origin`` says where each value in
effect came from: "default", the file, or the option. Every value is checked as it is read, and a
bad one is a ``ConfigError`` naming the file and the key.

The points are applied to the checks table in one place (``autograder.judge.checks.checks_table``),
which also refuses a check id the table does not have. The epochs (``autograder.assignment.EPOCHS``
by default) are what grading asks ``train_model`` for and what the ``training`` check expects; a
student's self-check and notebook cells use them too when they find the file (``epochs_in_effect``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import EPOCHS, MAX_EPOCHS
from autograder.errors import ConfigError
from autograder.limits import Limits

CONFIG_NAME = "autograder.toml"
COURSE_MARKER = "nbgrader_config.py"
DEFAULT_PASS_MARK = 0.85
DEFAULT = "default"

GIB = 1024**3
# Each key of [limits]: the ``Limits`` field it sets, the factor from the file's unit, and whether it is a count.
LIMIT_KEYS = {
    "submission_seconds": ("submission_seconds", 1, False),
    "cell_seconds": ("cell_seconds", 1, False),
    "training_seconds": ("training_seconds", 1, False),
    "memory_gib": ("memory_bytes", GIB, False),
    "processes": ("processes", 1, True),
    "file_gib": ("file_bytes", GIB, False),
    "scratch_gib": ("scratch_bytes", GIB, False),
    "temporary_gib": ("temporary_bytes", GIB, False),
}
TOP_KEYS = ("pass_mark", "epochs", "points", "limits", "lang")


@dataclass(frozen=True)
class Config:
    """The settings in effect: the file's values over the defaults, the command line's over both."""

    pass_mark: float = DEFAULT_PASS_MARK
    epochs: int = EPOCHS  # what grading asks train_model for, and what the training check expects
    lang: str | None = None  # the language of the students' messages (None: each notebook's own; autograder.i18n)
    points: dict[str, int] = field(default_factory=dict)  # by check id; a check not named keeps the table's
    limits: Limits = field(default_factory=Limits)
    path: Path | None = None  # the file read, if any
    origins: dict[str, str] = field(default_factory=dict)  # "limits.memory_gib" → the file or the option

    def origin(self, key: str) -> str:
        return self.origins.get(key, DEFAULT)

    def limit(self, key: str) -> float:
        """A limit in the file's unit (``memory_gib``, not bytes)."""
        name, factor, count = LIMIT_KEYS[key]
        value = getattr(self.limits, name) / factor
        return int(value) if count or float(value).is_integer() else value

    def with_limit(self, key: str, value: float, origin: str) -> "Config":
        """This config with one limit (in the file's unit) set from ``origin`` (a command-line option)."""
        value = checked_limit(key, value, origin, f"limits.{key}")
        name, factor, count = LIMIT_KEYS[key]
        limits = dataclasses.replace(self.limits, **{name: int(value * factor) if factor != 1 or count else value})
        return dataclasses.replace(self, limits=limits, origins={**self.origins, f"limits.{key}": origin})

    def with_lang(self, name: str, origin: str) -> "Config":
        """This config speaking ``name`` to every student (from ``origin``: the file or ``--lang``)."""
        from autograder.i18n import known_language

        try:
            lang = known_language(name) if isinstance(name, str) else None
        except ValueError as error:
            raise ConfigError(origin, "lang", str(error)) from None
        if lang is None:
            raise ConfigError(origin, "lang", f"must be a language name such as \"zh_CN\", not {name!r}")
        return dataclasses.replace(self, lang=lang, origins={**self.origins, "lang": origin})


def find_config(explicit: Path | None = None, start: Path | None = None) -> Path | None:
    """The file to read: ``explicit`` (which must exist), else ``autograder.toml`` in ``start`` (the
    current folder), else beside ``nbgrader_config.py`` in the nearest folder above; None if none."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ConfigError(explicit, None, "no such file")
        return Path(explicit)
    start = Path(start or Path.cwd()).resolve()
    if (start / CONFIG_NAME).is_file():
        return start / CONFIG_NAME
    for folder in start.parents:
        if (folder / COURSE_MARKER).is_file():
            return folder / CONFIG_NAME if (folder / CONFIG_NAME).is_file() else None
    return None


def load_config(path: Path | None) -> Config:
    """The config of ``path`` (the defaults for None), every value checked."""
    if path is None:
        return Config()
    toml = toml_reader(path)
    try:
        with open(path, "rb") as file:
            data = toml.load(file)
    except OSError as error:
        raise ConfigError(path, None, f"cannot be read ({error.strerror})") from None
    except toml.TOMLDecodeError as error:
        raise ConfigError(path, None, f"not valid TOML: {error}") from None
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(path, key, f"unknown key; the file may set {', '.join(TOP_KEYS)}")
    origin = str(path)
    config = Config(path=Path(path))
    if "pass_mark" in data:
        config = dataclasses.replace(config, pass_mark=checked_pass_mark(data["pass_mark"], path),
                                     origins={**config.origins, "pass_mark": origin})
    if "epochs" in data:
        config = dataclasses.replace(config, epochs=checked_epochs(data["epochs"], path),
                                     origins={**config.origins, "epochs": origin})
    if "lang" in data:
        config = config.with_lang(data["lang"], origin)
    points = table(data, "points", path)
    for check_id, value in points.items():
        if type(value) is not int:
            raise ConfigError(path, f"points.{check_id}", f"must be a whole number of points, not {value!r}")
        if value < 0:
            raise ConfigError(path, f"points.{check_id}", f"must be 0 or more, not {value}")
    config = dataclasses.replace(config, points=dict(points),
                                 origins={**config.origins, **{f"points.{key}": origin for key in points}})
    for key, value in table(data, "limits", path).items():
        if key not in LIMIT_KEYS:
            raise ConfigError(path, f"limits.{key}", f"unknown limit; the limits are {', '.join(LIMIT_KEYS)}")
        config = config.with_limit(key, value, origin)
    return config


def toml_reader(path: Path):
    """The standard library's ``tomllib`` (Python 3.11 on), or ``tomli``, the same module on Python 3.10."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(path, None, "reading it needs Python 3.11 or later, or `pip install tomli`") from None
    return tomllib


def table(data: dict, key: str, path: Path) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(path, key, f"must be a table ([{key}] with one key per line), not {value!r}")
    return value


def checked_pass_mark(value, path: Path) -> float:
    if type(value) not in (int, float):
        raise ConfigError(path, "pass_mark", f"must be a number, not {value!r}")
    if not 0 < value <= 1:
        raise ConfigError(path, "pass_mark", f"must be a test accuracy above 0 and at most 1 (0.85: 85 %), not {value}")
    return float(value)


def checked_epochs(value, path: Path) -> int:
    # The trainer refuses a fit call of more epochs than MAX_EPOCHS: a larger count could never be trained.
    if type(value) is not int:
        raise ConfigError(path, "epochs", f"must be a whole number of epochs, not {value!r}")
    if not 1 <= value <= MAX_EPOCHS:
        raise ConfigError(path, "epochs", f"must be a whole number from 1 to {MAX_EPOCHS}, not {value}")
    return value


def epochs_in_effect(start: Path | None = None) -> int:
    """The epochs of the config file found from ``start`` (``find_config``), else the default: what a
    student's self-check and notebook cells train for, as grading does."""
    return load_config(find_config(start=start)).epochs


def checked_limit(key: str, value, where, name: str) -> float:
    count = LIMIT_KEYS[key][2]
    kind = "a whole number" if count else "a number"
    if type(value) not in ((int,) if count else (int, float)):
        raise ConfigError(where, name, f"must be {kind}, not {value!r}")
    if not value > 0 or value == float("inf"):
        raise ConfigError(where, name, f"must be {kind} above 0, not {value}")
    return value


def nbgrader_points(notebook: Path) -> dict[str, int]:
    """The points of each check in a notebook's nbgrader metadata (its test cells ``check_<id>``)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    meta = [cell.get("metadata", {}).get("nbgrader", {}) for cell in cells]
    return {m["grade_id"].removeprefix("check_"): m.get("points") for m in meta
            if m.get("grade") and str(m.get("grade_id", "")).startswith("check_")}
