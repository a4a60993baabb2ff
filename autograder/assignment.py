"""The assignment's fixed facts, from the contract (../shared/contract.md), written once."""

from __future__ import annotations

from pathlib import Path

ASSIGNMENT_ID = "fashion_mnist"
NOTEBOOK_NAME = "fashion_mnist_classifier.ipynb"
SUBMITTED = "submitted"  # nbgrader's folder of submissions: submitted/<student>/<assignment>/<notebook>
REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_NOTEBOOK = REPO_ROOT / "solutions" / ASSIGNMENT_ID / NOTEBOOK_NAME
STUDENT_NOTEBOOK = REPO_ROOT / "assignments" / ASSIGNMENT_ID / NOTEBOOK_NAME

# The functions a student writes, in the order the lesson introduces them.
FUNCTIONS = (
    "normalize",
    "split_validation",
    "plot_samples",
    "build_model",
    "compile_model",
    "train_model",
    "predict_labels",
)

EPOCHS = 30  # the default; an instructor's autograder.toml may set others (autograder.config)
MAX_EPOCHS = 1000  # the most one fit call may ask the kit's trainer for, and the most a config may set
BATCH_SIZE = 32  # Keras's default, which the lesson keeps
N_VALID = 5000
SEED = 42
