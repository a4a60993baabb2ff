"""The ``autograder`` command line. Heavy imports happen inside each command, never here."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from autograder import __version__, skip_slow_optional_imports
from autograder.assignment import EPOCHS, SEED, SOURCE_NOTEBOOK
from autograder.demo import DEFAULT_PLOT
from autograder.errors import AutograderError, OutputError
from autograder.limits import DEFAULT_RESULTS, STOPPED, Limits, stopped_by_a_person


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Teach, self-check and grade the Keras Fashion-MNIST classifier assignment.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_demo(commands)
    add_grade(commands)
    add_check(commands)
    add_config(commands)
    add_gradescope_package(commands)
    return parser


def add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="train the reference solution's model and report its test accuracy",
        description="Load the reference solution's functions, train its model on Fashion-MNIST with a progress "
        "display, print the test accuracy and the training time, and save the learning curves as a PNG.",
    )
    demo.add_argument("--notebook", type=Path, default=SOURCE_NOTEBOOK, help="notebook to take the functions from")
    demo.add_argument("--data-dir", type=Path, help="folder with the four Fashion-MNIST .gz files")
    demo.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="where to save the learning curves (PNG)")
    demo.add_argument("--epochs", type=int, default=EPOCHS)
    demo.add_argument("--seed", type=int, default=SEED)
    demo.add_argument(
        "--keras-defaults", action="store_true", help="train with Keras's default execution settings (slower)"
    )
    demo.set_defaults(run=_demo)


def add_grade(commands) -> None:
    grade = commands.add_parser(
        "grade",
        help="grade notebooks with every check, public and hidden",
        description="Grade each notebook: run every check (training the model for the config's epochs, 30 by default, "
        "with the fast path, "
        "measuring the test accuracy itself) and print a report per submission. A notebook that cannot be loaded "
        "or crashes gets an error and score 0; the others are still graded.",
    )
    grade.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="notebooks, or folders holding them")
    add_grade_outputs(grade)
    grade.add_argument("--data-dir", type=Path, help="folder with the four Fashion-MNIST .gz files")
    grade.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="DIR",
        help="one result file per submission, written as each finishes; a rerun skips those already graded "
        f"(default: {DEFAULT_RESULTS})",
    )
    add_grade_limits(grade)
    add_config_option(grade)
    add_lang_option(grade)
    grade.add_argument(
        "--nbgrader-db", metavar="URL",
        help="also write the scores into nbgrader's gradebook (e.g. sqlite:///gradebook.db) for nbgrader export",
    )
    add_grade_execution(grade)
    grade.set_defaults(run=_grade)


def add_grade_outputs(grade: argparse.ArgumentParser) -> None:
    grade.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON to FILE")
    grade.add_argument("--csv", type=Path, metavar="FILE",
                       help="also write a CSV gradebook to FILE (a row per submission, with its student)")
    grade.add_argument(
        "--gradescope", type=Path, metavar="DIR",
        help="also write a Gradescope results.json per submission, in DIR/<student>/<assignment>/<notebook>/",
    )
    grade.add_argument(
        "--feedback", type=Path, metavar="DIR",
        help="also write an HTML feedback page per submission (messages, learning curves, confusion matrix) to "
        "DIR/<student>/<assignment>/<notebook>.html: with the course's feedback folder as DIR, nbgrader's "
        "release_feedback hands each student their page. The student: the folder in nbgrader's layout "
        "submitted/<student>/<assignment>/<notebook>.ipynb, else the path inside the folder graded",
    )
    grade.add_argument(
        "--class-report", type=Path, metavar="FILE",
        help="also write one HTML page about the whole class to FILE: score distribution, pass rate and most common "
        "mistakes per check, test accuracies, time and peak memory per submission",
    )


# Each limit option: its destination and the key of autograder.toml's [limits] it overrides.
LIMIT_OPTIONS = (("--time-limit", "time_limit", "submission_seconds"),
                 ("--cell-time-limit", "cell_time_limit", "cell_seconds"),
                 ("--memory-limit", "memory_limit", "memory_gib"))


def add_grade_limits(grade: argparse.ArgumentParser) -> None:
    limits = Limits()
    # No defaults here: an option given overrides the config file, one not given leaves it be.
    grade.add_argument("--time-limit", type=float, metavar="SECONDS", help="wall-clock limit for one submission, "
                       f"training included (default: {limits.submission_seconds:g})")
    grade.add_argument("--cell-time-limit", type=float, metavar="SECONDS", help="limit for one cell or one function "
                       f"call, training aside (default: {limits.cell_seconds:g})")
    grade.add_argument("--memory-limit", type=float, metavar="GIB", help="address-space limit of a submission's "
                       f"process (default: {limits.memory_bytes / 1024**3:g})")


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the assignment's settings: pass mark, epochs, points, limits (default: autograder.toml "
                        "in the current folder, else beside the course's nbgrader_config.py; without one, the kit's "
                        "defaults)")


def add_config(commands) -> None:
    config = commands.add_parser(
        "config",
        help="print the settings in effect (pass mark, epochs, points, limits) and where each came from",
        description="Print the pass mark, the epochs, the points of each check and the limits that grading would "
        "use, each with where it came from: the kit's default, the config file, or a command-line option.",
    )
    add_config_option(config)
    add_grade_limits(config)
    add_lang_option(config)
    config.set_defaults(run=_config)


def add_lang_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", metavar="LANG", help="the language of the students' messages: en or zh_CN "
                        "(default: each notebook's own, else the locale's, else English)")


def settings(args: argparse.Namespace):
    """The config in effect: the file's values over the defaults, the limit options over both; every
    value checked, the points against the checks table."""
    from autograder.config import find_config, load_config
    from autograder.judge.checks import checks_table

    config = load_config(find_config(args.config))
    if getattr(args, "lang", None):
        config = config.with_lang(args.lang, "--lang")
    for option, dest, key in LIMIT_OPTIONS:
        if getattr(args, dest, None) is not None:
            config = config.with_limit(key, getattr(args, dest), option)
    checks_table(config)
    return config


def warn_if_the_notebook_disagrees(config) -> None:
    """Grades follow the config's points; the released notebooks show their nbgrader metadata's, so say so when
    the two differ."""
    from autograder.config import nbgrader_points
    from autograder.judge.checks import checks_table

    shown = nbgrader_points(SOURCE_NOTEBOOK)
    table = checks_table(config)
    differ = [f"{c.id} {c.points} (notebook: {shown.get(c.id)})" for c in table if shown.get(c.id) != c.points]
    if differ:
        print(f"autograder: warning: grading with the points of {config.path}, which differ from the nbgrader "
              f"metadata of {SOURCE_NOTEBOOK.name}: {', '.join(differ)}. Run `make assignment` and release the "
              "notebooks again so that students see the points they are graded on.", file=sys.stderr, flush=True)


def _config(args: argparse.Namespace) -> int:
    from autograder.reports.text import format_config

    print(format_config(settings(args)))
    return 0


def add_grade_execution(grade: argparse.ArgumentParser) -> None:
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on an existing Dask cluster (e.g. tcp://10.0.0.5:8786) instead of this machine")
    grade.add_argument("--workers", type=int, default=1, metavar="N",
                       help="grade N submissions at once, each in its own sandbox, starting those expected to take "
                       "longest first (reports keep the order given)")
    grade.add_argument("--no-reuse", action="store_true",
                       help="train every submission, even one whose training the batch's trainers already ran from an "
                       "identical description (same model, compile settings, fit arguments, data, seed)")
    grade.add_argument("--trainings", type=Path, metavar="DIR",
                       help="keep the kit's trainings in DIR (a folder only you can write) and replay them in later "
                       "runs: a regrade, late submissions, one notebook at a time (at most 2 GiB, the least recently "
                       "used going first)")
    grade.add_argument("--unsandboxed", action="store_true",
                       help="run the notebooks' code in this process (the kit's trainer still trains): only for "
                       "notebooks you trust")


def add_check(commands) -> None:
    check = commands.add_parser(
        "check",
        help="self-check a notebook on the public checks (fast by default)",
        description="Run the public checks on your notebook. The checks that need the full training are "
        "skipped unless you pass --full.",
    )
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    check.add_argument("--full", action="store_true", help="also train the model as grading does (the epochs of "
                       "the autograder.toml found from the notebook's folder, else 30: about a minute)")
    check.add_argument("--data-dir", type=Path, help="folder with the four Fashion-MNIST .gz files")
    add_lang_option(check)
    check.set_defaults(run=_check)


def add_gradescope_package(commands) -> None:
    package = commands.add_parser(
        "gradescope-package",
        help="write Gradescope's autograder zip (setup.sh, run_autograder) to upload with the assignment",
        description="Write the autograder zip for a Gradescope programming assignment: setup.sh installs the kit "
        "(no solutions, no tests) and Fashion-MNIST; run_autograder grades the notebook a student uploads into "
        "results.json, hidden checks shown once grades are published, the test accuracy on the leaderboard.",
    )
    package.add_argument("out", type=Path, metavar="OUT.zip")
    package.set_defaults(run=_gradescope_package)


def _gradescope_package(args: argparse.Namespace) -> int:
    from autograder.reports.gradescope_package import write_package

    print(f"wrote {write_package(args.out)}: upload it as the assignment's autograder on Gradescope")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from autograder.batch.local import grade_notebooks
    from autograder.reports.gradebook import check_gradebook, sqlite_file
    from autograder.reports.text import format_logged

    config = settings(args)
    if args.nbgrader_db:  # said now, not after the class is graded
        check_gradebook(args.nbgrader_db)
    warn_if_the_notebook_disagrees(config)
    reports = grade_notebooks(
        args.paths,
        data_dir=args.data_dir,
        out=sys.stdout,
        show=format_logged,
        sandbox=not args.unsandboxed,
        limits=config.limits,
        config=config,
        results=args.results,
        private=[path for path in (args.json, args.csv, args.gradescope, args.feedback, args.class_report,
                                   sqlite_file(args.nbgrader_db)) if path],
        workers=args.workers,
        scheduler=args.scheduler,
        reuse=not args.no_reuse,
        trainings=args.trainings,
    )
    failed = write_outputs(args, reports, config)
    graded = sum(report.error is None for report in reports)
    print(f"\n{len(reports)} submissions: {graded} graded, {len(reports) - graded} could not be graded")
    if failed:
        print(f"autograder: error: not written: {', '.join(failed)} (the other outputs were written; the results "
              "folder keeps every grade, so the same command writes them again without grading)", file=sys.stderr)
        return OutputError.exit_code
    return 0


# Each of grade's outputs: its option, the module and function that write it from the reports.
GRADE_OUTPUTS = (
    ("--json", "autograder.reports.formats", "write_json"),
    ("--csv", "autograder.reports.formats", "write_csv"),
    ("--gradescope", "autograder.reports.formats", "write_gradescope"),
    ("--feedback", "autograder.reports.feedback", "write_feedback"),
    ("--class-report", "autograder.reports.class_report", "write_class_report"),
    ("--nbgrader-db", "autograder.reports.gradebook", "write_nbgrader_gradebook"),
)
WITH_CONFIG = {"--class-report"}  # the class overview marks the pass mark the class was graded with


def write_outputs(args: argparse.Namespace, reports, config=None) -> list[str]:
    """Every output asked for, each on its own: one that fails (a bug, a full disk) is named, and the
    others are still written; those that say what grading was set to are given ``config``. Returns the
    options that failed."""
    import importlib

    failed = []
    for option, module, function in GRADE_OUTPUTS:
        target = getattr(args, option.removeprefix("--").replace("-", "_"))
        if not target:
            continue
        try:
            given = {"config": config} if option in WITH_CONFIG and config is not None else {}
            getattr(importlib.import_module(module), function)(reports, target, **given)
        except Exception as error:
            failed.append(option)
            print(f"autograder: {option} {target} could not be written: {type(error).__name__}: {error}",
                  file=sys.stderr, flush=True)
    return failed


def _check(args: argparse.Namespace) -> int:
    from autograder.selfcheck import format_self_check, self_check

    print(format_self_check(self_check(args.notebook, full=args.full, data_dir=args.data_dir, lang=args.lang)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo

    run_demo(
        args.notebook,
        data_dir=args.data_dir,
        plot_path=args.plot,
        epochs=args.epochs,
        seed=args.seed,
        fast=not args.keras_defaults,
    )
    return 0


INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    skip_slow_optional_imports()
    for stream in (sys.stdout, sys.stderr):  # a log in latin-1 shows a Chinese name escaped, never stops on it
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    # A job scheduler's or `timeout`'s SIGTERM stops the grader as Ctrl-C does: its sandboxes are
    # killed and its temporary folders removed (by default SIGTERM would leave both behind). Both are
    # marked as the person's: a KeyboardInterrupt a student's code raises is only that code's failure.
    in_main_thread = threading.current_thread() is threading.main_thread()
    STOPPED.clear()
    previous = [signal.signal(number, stopped_by_a_person) for number in STOP_SIGNALS] if in_main_thread else []
    try:
        return args.run(args)
    except AutograderError as error:
        print(f"autograder: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("autograder: interrupted (grading keeps each result stored so far: the same command grades the rest)",
              file=sys.stderr)
        return INTERRUPTED
    finally:
        for number, handler in zip(STOP_SIGNALS, previous):
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
