"""`import autograder` and `autograder --help` must not pay for TensorFlow."""

import subprocess
import sys
from pathlib import Path

HEAVY = ("tensorflow", "keras", "matplotlib", "nbclient", "nbgrader")


def test_importing_the_package_and_its_cli_loads_no_tensorflow():
    code = (
        "import sys, autograder, autograder.cli, autograder.data.fashion_mnist, autograder.submission.notebook, autograder.trainer.fast_path;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_answers_from_the_console_script_and_python_m():
    script = Path(sys.executable).with_name("autograder")
    for command in ([str(script), "--help"], [sys.executable, "-m", "autograder", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "usage: autograder" in result.stdout
        assert "demo" in result.stdout


def test_an_unknown_command_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "autograder", "nonsense"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
