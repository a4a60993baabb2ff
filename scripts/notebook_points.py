"""Write the points in effect (autograder.toml over the checks table) into the source notebook's nbgrader
metadata, so that `nbgrader generate_assignment` (run next by `make assignment`) releases notebooks with
the points the grader gives. Leaves the file untouched when they already agree.

    python scripts/notebook_points.py [--config FILE] [NOTEBOOK]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from autograder.assignment import REPO_ROOT, SOURCE_NOTEBOOK
from autograder.config import find_config, load_config
from autograder.errors import ConfigError
from autograder.judge.checks import checks_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path, nargs="?", default=SOURCE_NOTEBOOK)
    parser.add_argument("--config", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    try:
        table = checks_table(load_config(find_config(args.config, start=REPO_ROOT)))
    except ConfigError as error:
        print(f"notebook_points: error: {error}", file=sys.stderr)
        return error.exit_code
    points = {f"check_{check.id}": check.points for check in table}
    nb = nbformat.read(args.notebook, as_version=4)
    changed = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and meta.get("grade_id") in points and meta.get("points") != points[meta["grade_id"]]:
            changed.append(f"{meta['grade_id']}: {meta.get('points')} → {points[meta['grade_id']]}")
            meta["points"] = points[meta["grade_id"]]
    if changed:
        nbformat.write(nb, args.notebook)
    print(f"notebook_points: {args.notebook}: " + ("; ".join(changed) if changed else "the points already agree"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
