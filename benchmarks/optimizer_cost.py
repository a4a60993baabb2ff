"""What an epoch of the lesson's network costs per optimizer and batch size: the figures behind
``autograder.batch.order`` (which starts the longest submissions of a batch first).

Trains the reference ``build_model`` on the 55,000 training images the way a sandbox does (one
thread, the kit's fast path) for a few epochs per setting and prints one JSON line each: the
seconds of the epochs after the first (the first compiles). Then fits the model the estimate uses,
epoch = fixed part + batches x update, and prints the fixed part and each optimizer's update in ms:

    .venv/bin/python benchmarks/optimizer_cost.py         # about 2 minutes on this machine
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time

from autograder.sandbox.launch import GRADING_THREADS

for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ[_name] = str(GRADING_THREADS)  # as in a sandbox; before TensorFlow starts
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OPTIMIZERS = ("sgd", "sgd_momentum", "rmsprop", "adagrad", "adam", "adamw", "nadam")
EPOCHS = 4


def epoch_seconds(build_model, x, y, optimizer_name: str, batch_size: int) -> float:
    import keras

    from autograder.trainer.fast_path import use_fast_execution

    optimizer = keras.optimizers.SGD(momentum=0.9) if optimizer_name == "sgd_momentum" else optimizer_name
    keras.utils.set_random_seed(42)
    model = build_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    use_fast_execution(model, 42)
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    model.fit(x, y, epochs=EPOCHS, batch_size=batch_size, verbose=0, callbacks=[Timer()])
    return statistics.median(times[1:])


def main() -> None:
    from autograder.assignment import BATCH_SIZE, SOURCE_NOTEBOOK
    from autograder.batch.order import TRAINING_IMAGES
    from autograder.data.reference import ReferenceData
    from autograder.submission.notebook import load_functions

    data = ReferenceData.load()
    x, y = data.X_train, data.y_train
    assert len(x) == TRAINING_IMAGES
    build_model = load_functions(SOURCE_NOTEBOOK, ("build_model",))["build_model"]
    measured = {}
    settings = [(name, BATCH_SIZE) for name in OPTIMIZERS] + [("sgd", 16), ("sgd", 64), ("adam", 16), ("adam", 64)]
    for name, batch_size in settings:
        seconds = epoch_seconds(build_model, x, y, name, batch_size)
        measured[name, batch_size] = seconds
        print(json.dumps({"optimizer": name, "batch_size": batch_size, "epoch_seconds": round(seconds, 3)}), flush=True)
    # Two batch sizes of SGD give the fixed part and SGD's update; the others' updates follow.
    steps = {size: math.ceil(TRAINING_IMAGES / size) for size in (16, BATCH_SIZE, 64)}
    sgd_update = (measured["sgd", 16] - measured["sgd", BATCH_SIZE]) / (steps[16] - steps[BATCH_SIZE])
    fixed = measured["sgd", BATCH_SIZE] - steps[BATCH_SIZE] * sgd_update
    updates = {name: round((measured[name, BATCH_SIZE] - fixed) / steps[BATCH_SIZE] * 1000, 3) for name in OPTIMIZERS}
    checked = (("sgd", 64), ("adam", 16), ("adam", 64))  # measured, not used to fit
    print(json.dumps({"model": "epoch = fixed + batches x update", "fixed_seconds": round(fixed, 3),
                      "update_ms": updates,
                      "predicted_epoch_seconds": {f"{name}@{size}": round(fixed + steps[size] * updates[name] / 1000, 3)
                                                  for name, size in checked},
                      "measured_epoch_seconds": {f"{name}@{size}": round(measured[name, size], 3)
                                                 for name, size in checked}}))


if __name__ == "__main__":
    main()
