"""Where a batch stands, as it grades: a live line on a terminal, plain lines in a log.

Each finished report is shown as the caller's ``show`` writes it (the command line's is
``autograder.reports.text.format_logged``): the batch knows when, the reports know how.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from autograder.text import terminal_text


class Progress:
    """Where a batch stands: a live line on a terminal, plain lines in a log."""

    def __init__(self, total: int, out, show: Callable[[object], str] | None = None):
        self.total, self.out, self.show = total, out, show
        self.done = self.failed = 0
        self.started_at = time.monotonic()
        self.live = bool(out) and hasattr(out, "isatty") and out.isatty()
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        """A line about the batch itself (its sandbox, what it cleaned up)."""
        if self.out:
            print(line, file=self.out, flush=True)

    def started(self, path: Path) -> None:
        if self.out and not self.live:
            with self.lock:
                print(f"grading {terminal_text(path)}", file=self.out, flush=True)

    def finished(self, report) -> None:
        if not self.out:
            return
        with self.lock:
            self.done += 1
            self.failed += report.error is not None
            elapsed = time.monotonic() - self.started_at
            left = elapsed / self.done * (self.total - self.done)
            line = f"[{self.done}/{self.total}] {self.failed} could not be graded, about {left / 60:.0f} min left"
            if self.live:
                print("\r\033[K", end="", file=self.out)
            if self.show is not None:
                try:
                    shown = self.show(report)
                except Exception as error:  # a report the log cannot show stops no batch
                    shown = (f"{terminal_text(report.submission)}: {report.score}/{report.max_score} (the report "
                             f"could not be shown: {type(error).__name__}: {terminal_text(error)})")
                print(shown, file=self.out)
            print(line, end="\r" if self.live else "\n", file=self.out, flush=True)

    def close(self) -> None:
        if self.out and self.live:
            print(file=self.out, flush=True)
