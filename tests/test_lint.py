"""The tree passes ruff, with the rules and line length of pyproject.toml's [tool.ruff].

Fast: ruff reads the files, nothing is imported. Notebooks are never checked: the test notebooks
are graded as students wrote them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff is not installed: pip install ruff (a dependency in pyproject.toml)")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "autograder", "tests", "benchmarks", "scripts"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"ruff check found problems:\n{result.stdout}{result.stderr}"
