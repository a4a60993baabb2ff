"""The ``autograder`` command line. Heavy imports happen inside each command, never here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import __version__
from autograder.assignment import EPOCHS, SEED, SOURCE_NOTEBOOK
from autograder.demo import DEFAULT_PLOT
from autograder.errors import AutograderError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Teach, self-check and grade the Keras Fashion-MNIST classifier assignment.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except AutograderError as error:
        print(f"autograder: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("autograder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
