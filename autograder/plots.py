"""Figures the kit draws for people: learning curves."""

from __future__ import annotations

from pathlib import Path


def learning_curves(history: dict[str, list[float]], title: str = "Learning curves"):
    """A figure of every series in a Keras ``History.history`` against the epoch number."""
    # matplotlib.figure.Figure needs no GUI backend, so this works on a headless grader.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for name, values in history.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylim(0, max([1.0, *(max(v) for v in history.values() if v)]))
    ax.grid(True)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
