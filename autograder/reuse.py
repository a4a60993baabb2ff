"""Reusing identical trainings across the sandboxes of one grading batch.

Many students submit the same model and training code. Inside one process ``TrainingCache``
replays a training whose every input is identical to one already run; across sandboxes the
results come from untrusted children, so a result is shared only once it is confirmed:

- each child (``ReuseFolder``) computes its ``fit`` call's key (``TrainingCache.key``: model
  configuration, initial weights and optimizer state, compile settings, every ``fit`` argument,
  the data, the seed, the execution settings and the library versions) and reports it with its
  artifacts;
- the grader (``SharedTrainings``) publishes a key's result — the trained weights and the
  history — only when two different submissions with that key trained it themselves, each in its
  own sandbox, and got the very same bits. One hostile submission cannot plant a result for
  others, and a training that is not deterministic is never reused;
- a later child finds a published result by its key in a folder it cannot list, so it learns
  nothing about keys it cannot compute itself, and replays exactly what its training would have
  produced. The report says so.

Every child uses the same number of threads (``autograder.sandbox.GRADING_THREADS``), so a key
means the same computation in every sandbox of the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from autograder.training import TrainingCache

KEY = re.compile(r"[0-9a-f]{64}")
CONFIRMATIONS = 2  # different submissions that must have trained a key to the same bits


class ReuseFolder(TrainingCache):
    """In the sandbox's child: published results, found by key in ``folder``."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def __contains__(self, key: str) -> bool:
        return (self.folder / f"{key}.npz").is_file()

    def replay(self, key: str, model: Any):
        import keras

        with np.load(self.folder / f"{key}.npz", allow_pickle=False) as saved:
            model.set_weights([saved[f"w{index}"] for index in range(len(saved.files))])
        stored = json.loads((self.folder / f"{key}.json").read_text())
        history = keras.callbacks.History()
        history.set_model(model)
        history.history = stored["history"]
        history.epoch = stored["epoch"]
        history.params = stored["params"]
        return history

    def store(self, key: str, model: Any, history: Any, owner: str) -> None:
        pass  # the grader learns this training from the child's artifacts


def result_digest(weights: list[np.ndarray], fit: dict) -> str:
    """What a training produced: its final weights and what its ``fit`` returned (history, epochs, params)."""
    digest = hashlib.sha256()
    for weight in weights:
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    digest.update(json.dumps(fit, sort_keys=True).encode())
    return digest.hexdigest()


class SharedTrainings:
    """In the grader: which trainings of this batch are confirmed, published in ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o711)  # children open a file by its key; they cannot list the folder
        self.lock = threading.Lock()
        self.seen: dict[str, dict[str, set[str]]] = {}  # key -> result digest -> submissions
        self.published: dict[str, str] = {}  # key -> result digest

    def expose(self, target: Path) -> None:
        """Give a child's scratch folder the results published so far (hard links, root's, read-only)."""
        target.mkdir()
        os.chmod(target, 0o711)
        with self.lock:
            files = [path for key in self.published for path in (self.folder / f"{key}.npz", self.folder / f"{key}.json")]
        for path in files:
            os.link(path, target / path.name)

    def learn(self, submission: str, artifacts) -> str | None:
        """Record what a child's training produced; returns the note for its report, if any."""
        training = artifacts.values.get("training") or {}
        key, model, fit = training.get("key"), artifacts.models.get("trained"), training.get("fit_history")
        if not (
            isinstance(key, str) and KEY.fullmatch(key) and model is not None
            and isinstance(fit, dict) and isinstance(fit.get("history"), dict)
        ):
            return None
        digest = result_digest(model.get_weights(), fit)
        with self.lock:
            if training.get("reused"):
                if self.published.get(key) == digest:
                    return (
                        "training reused: the bit-for-bit result of an identical training (same model, initial "
                        "weights, compile settings, fit arguments, data and seed) that other submissions of this "
                        "batch ran in their own sandboxes"
                    )
                return None
            owners = self.seen.setdefault(key, {}).setdefault(digest, set())
            owners.add(submission)
            if len(owners) >= CONFIRMATIONS and key not in self.published:
                self._publish(key, model.get_weights(), fit)
                self.published[key] = digest
        return None

    def _publish(self, key: str, weights: list[np.ndarray], fit: dict) -> None:
        stored = {"history": fit["history"], "epoch": fit.get("epoch") or [], "params": fit.get("params") or {}}
        for suffix, write in (
            (".npz", lambda path: np.savez(path, **{f"w{index}": w for index, w in enumerate(weights)})),
            (".json", lambda path: path.write_text(json.dumps(stored))),
        ):
            temporary = self.folder / f".{key}{suffix}"
            write(temporary)
            os.chmod(temporary, 0o444)
            os.replace(temporary, self.folder / f"{key}{suffix}")
