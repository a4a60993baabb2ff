"""Write the test submissions: the released student notebook with its stubs filled in.

Each submission is named by its outcome and differs from a correct one in one thing only; beside
it, ``NAME.expected.json`` holds the score it must get, the checks that must fail and a phrase each
failing check's message must contain (or a list of phrases: a check that finds several mistakes names
them all). Run it again after the student notebook changes:

    .venv/bin/python tests/submissions/make_submissions.py
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
STUDENT_NOTEBOOK = HERE.parents[1] / "assignments" / "fashion_mnist" / "fashion_mnist_classifier.ipynb"

CORRECT = {
    "normalize": """
def normalize(images):
    return images / 255.0
""",
    "split_validation": """
def split_validation(images, labels, n_valid=5000):
    X_valid, X_train = images[:n_valid], images[n_valid:]
    y_valid, y_train = labels[:n_valid], labels[n_valid:]
    return (X_train, y_train), (X_valid, y_valid)
""",
    "plot_samples": """
def plot_samples(images, labels, n_rows=4, n_cols=10):
    fig = plt.figure(figsize=(n_cols * 1.2, n_rows * 1.2))
    for index in range(n_rows * n_cols):
        ax = fig.add_subplot(n_rows, n_cols, index + 1)
        ax.imshow(images[index], cmap="binary")
        ax.axis("off")
        ax.set_title(CLASS_NAMES[labels[index]], fontsize=8)
    return fig
""",
    "build_model": """
def build_model():
    return keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(300, activation="relu"),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
""",
    "compile_model": """
def compile_model(model):
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model
""",
    "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid))
    return history
""",
    "predict_labels": """
def predict_labels(model, images):
    return np.argmax(model.predict(images), axis=-1)
""",
}


def build_model_with(*layers: str) -> str:
    body = ",\n        ".join(layers)
    return f"""
def build_model():
    return keras.Sequential([
        {body},
    ])
"""


def compile_with(loss: str, optimizer: str = '"sgd"') -> str:
    return f"""
def compile_model(model):
    model.compile(loss={loss}, optimizer={optimizer}, metrics=["accuracy"])
    return model
"""


INPUT, FLATTEN = "keras.Input(shape=(28, 28))", "keras.layers.Flatten()"
D300, D100, D10 = (
    'keras.layers.Dense(300, activation="relu")',
    'keras.layers.Dense(100, activation="relu")',
    'keras.layers.Dense(10, activation="softmax")',
)

# name -> (changed functions, expected score, {failing check: phrase of its message})
SUBMISSIONS = {
    "passes_all": ({}, 100, {}),
    # --- one mistake each ------------------------------------------------------------------------
    "labels_divided_by_255": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    X_valid, X_train = images[:n_valid], images[n_valid:]
    y_valid, y_train = labels[:n_valid] / 255.0, labels[n_valid:] / 255.0
    return (X_train, y_train), (X_valid, y_valid)
"""
        },
        90,
        {"split": "labels were divided by 255"},
    ),
    "labels_turned_to_floats": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    labels = labels.astype("float32")
    return (images[n_valid:], labels[n_valid:]), (images[:n_valid], labels[:n_valid])
"""
        },
        90,
        {"split": "labels were turned into float32"},
    ),
    "validation_taken_from_the_end": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    return (images[:-n_valid], labels[:-n_valid]), (images[-n_valid:], labels[-n_valid:])
"""
        },
        90,
        {"split": "taken from the end"},
    ),
    "validation_shuffled": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    return (images[n_valid:], labels[n_valid:]), (images[:n_valid], labels[:n_valid])
"""
        },
        90,
        {"split": "shuffled"},
    ),
    "images_not_scaled": (
        {"normalize": "\ndef normalize(images):\n    return images.astype('float32')\n"},
        90,
        {"normalize": "not scaled"},
    ),
    "images_scaled_twice": (
        {"normalize": "\ndef normalize(images):\n    return images / 255.0 / 255.0\n"},
        90,
        {"normalize": "scaled twice"},
    ),
    "images_scaled_by_their_maximum": (  # the lesson's images reach 255, so only a darker one tells
        {"normalize": "\ndef normalize(images):\n    return images / images.max()\n"},
        90,
        {"normalize": "not by 255: images whose brightest pixel is 127"},
    ),
    "flatten_missing": (
        {"build_model": build_model_with(INPUT, D300, D100, D10)},
        45,
        {
            "model_architecture": "no Flatten layer",
            "parameter_counts": "parameters per layer",
            "training": "training failed",
            "test_accuracy": "training failed",
        },
    ),
    "hidden_layer_of_200_units": (
        {"build_model": build_model_with(INPUT, FLATTEN, 'keras.layers.Dense(200, activation="relu")', D100, D10)},
        75,
        {"model_architecture": "layer 2 has 200 units", "parameter_counts": "parameters per layer"},
    ),
    "no_softmax_on_the_output": (
        {"build_model": build_model_with(INPUT, FLATTEN, D300, D100, "keras.layers.Dense(10)")},
        65,
        {"model_architecture": "use activation='softmax'", "test_accuracy": "below the minimum"},
    ),
    "categorical_crossentropy_with_integer_labels": (
        {"compile_model": compile_with('"categorical_crossentropy"')},
        55,
        {
            "compile": "categorical_crossentropy expects one-hot labels",
            "training": "training failed",
            "test_accuracy": "training failed",
        },
    ),
    "adam_instead_of_sgd": (
        {"compile_model": compile_with('"sparse_categorical_crossentropy"', '"adam"')},
        85,
        {"compile": "the optimizer is Adam"},
    ),
    "ten_epochs_only": (
        {
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=10, validation_data=(X_valid, y_valid))
"""
        },
        90,
        {"training": "trained for 10 epochs"},
    ),
    "no_validation_data": (
        {
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=epochs)
"""
        },
        90,
        {"training": "no validation data"},
    ),
    "predict_returns_probabilities": (
        {"predict_labels": "\ndef predict_labels(model, images):\n    return model.predict(images)\n"},
        95,
        {"predict_labels": "returned probabilities"},
    ),
    "predict_scales_the_test_images_again": (
        {
            "predict_labels": "\ndef predict_labels(model, images):\n"
            "    return np.argmax(model.predict(images / 255.0), axis=-1)\n"
        },
        95,
        {"predict_labels": "scales the images again"},
    ),
    "axes_left_on": (
        {"plot_samples": CORRECT["plot_samples"].replace('        ax.axis("off")\n', "")},
        95,
        {"samples_plot": "the axes are on (every image draws its ticks and frame): turn them off with ax.axis('off')"},
    ),
    "titles_as_numbers": (
        {"plot_samples": CORRECT["plot_samples"].replace("CLASS_NAMES[labels[index]]", "str(labels[index])")},
        95,
        {"samples_plot": "the images are titled with label numbers"},
    ),
    "three_rows_of_images": (
        {"plot_samples": CORRECT["plot_samples"].replace("range(n_rows * n_cols)", "range(3 * n_cols)")},
        95,
        {"samples_plot": "the figure shows 30 images; a 4×10 grid shows 40"},
    ),
    "compile_with_three_mistakes": (
        {
            "compile_model": """
def compile_model(model):
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model
"""
        },
        55,
        {
            "compile": [
                "categorical_crossentropy expects one-hot labels",
                "the optimizer is Adam",
                "the metrics are none; add metrics=['accuracy']",
            ],
            "training": "training failed",
            "test_accuracy": "training failed",
        },
    ),
    "epochs_hard_coded_in_train_model": (
        {
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=30, validation_data=(X_valid, y_valid))
"""
        },
        90,
        {"training": "`train_model` ignores its epochs argument: called with epochs=2"},
    ),
    # --- correct variants: full marks each -------------------------------------------------------
    "loss_as_function": ({"compile_model": compile_with("keras.losses.sparse_categorical_crossentropy")}, 100, {}),
    "loss_as_object": ({"compile_model": compile_with("keras.losses.SparseCategoricalCrossentropy()")}, 100, {}),
    "optimizer_as_object": (
        {"compile_model": compile_with('"sparse_categorical_crossentropy"', "keras.optimizers.SGD()")},
        100,
        {},
    ),
    "flatten_with_input_shape": (
        {
            "build_model": build_model_with(
                "keras.layers.Flatten(input_shape=[28, 28])", D300, D100, D10
            )
        },
        100,
        {},
    ),
    "model_built_with_add": (
        {
            "build_model": """
def build_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28)))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(300, activation=keras.activations.relu))
    model.add(keras.layers.Dense(100, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model
"""
        },
        100,
        {},
    ),
    "model_built_with_the_functional_api": (
        {
            "build_model": """
def build_model():
    inputs = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten()(inputs)
    hidden1 = keras.layers.Dense(300, activation="relu")(flat)
    hidden2 = keras.layers.Dense(100, activation="relu")(hidden1)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden2)
    return keras.Model(inputs=inputs, outputs=outputs)
"""
        },
        100,
        {},
    ),
    "functional_api_with_activation_layers": (
        {
            "build_model": """
def build_model():
    inputs = keras.layers.Input(shape=(28, 28))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(300)(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dense(100, activation=keras.activations.relu)(x)
    x = keras.layers.Dense(10)(x)
    outputs = keras.layers.Softmax()(x)
    return keras.Model(inputs, outputs)
"""
        },
        100,
        {},
    ),
    "model_with_an_input_layer_and_activation_layers": (
        {
            "build_model": build_model_with(
                "keras.layers.InputLayer(shape=(28, 28))", FLATTEN, "keras.layers.Dense(300)",
                'keras.layers.Activation("relu")', "keras.layers.Dense(100)", "keras.layers.ReLU()",
                "keras.layers.Dense(10)", 'keras.layers.Activation("softmax")',
            )
        },
        100,
        {},
    ),
    "normalize_with_integer_255": ({"normalize": "\ndef normalize(images):\n    return images / 255\n"}, 100, {}),
    "normalize_with_astype_then_divide": (
        {
            "normalize": "\ndef normalize(images):\n    scaled = images.astype(np.float32)\n"
            "    scaled /= 255\n    return scaled\n"
        },
        100,
        {},
    ),
    "validation_data_and_validation_split": (  # Keras reads the split only without validation_data
        {
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid), validation_split=0.1)
"""
        },
        100,
        {},
    ),
    "validated_once_on_one_batch": (
        {
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid), validation_steps=1,
                     validation_freq=epochs)
"""
        },
        90,
        {"training": "not validated on the whole validation set after every epoch"},
    ),
    "validation_samples_weighted": (
        {
            "train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    weights = np.zeros(len(y_valid))
    weights[:32] = 1.0
    return model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid, weights))
"""
        },
        90,
        {"training": "without sample weights"},
    ),
    "split_scales_the_images_again": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    X_valid, X_train = images[:n_valid] / 255.0, images[n_valid:] / 255.0
    return (X_train, labels[n_valid:]), (X_valid, labels[:n_valid])
"""
        },
        90,
        {"split": "the images were scaled again"},
    ),
    "split_grouped_by_kind": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    return (images[n_valid:], images[:n_valid]), (labels[n_valid:], labels[:n_valid])
"""
        },
        90,
        {"split": "grouped by kind"},
    ),
    "model_without_an_input_shape": (  # as older tutorials write it: Keras builds it on the first fit
        {"build_model": build_model_with(FLATTEN, D300, D100, D10)},
        75,
        {"model_architecture": "built only once it sees data", "parameter_counts": "not built"},
    ),
    "model_without_an_input_shape_copied": (  # its training is replayed from the first one's, as built (helper-53)
        {"build_model": build_model_with(FLATTEN, D300, D100, D10)},
        75,
        {"model_architecture": "built only once it sees data", "parameter_counts": "not built"},
    ),
    "data_read_above_a_def": (  # worked in Jupyter; grading never loads the lesson's data (helper-54 F6)
        {"predict_labels": "X_new = X_test[:3]" + CORRECT["predict_labels"] + "print(predict_labels(model, X_new))\n"},
        100,
        {},
    ),
    "trained_in_two_calls_into_the_first_history": (  # any History its fit calls returned (helper-57 F5)
        {"train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    history = model.fit(X_train, y_train, epochs=epochs // 2, validation_data=(X_valid, y_valid))
    more = model.fit(X_train, y_train, epochs=epochs - epochs // 2, validation_data=(X_valid, y_valid))
    for name, values in more.history.items():
        history.history[name].extend(values)
    return history
"""},
        100,
        {},
    ),
    "checkpointed_with_keras_callbacks": (  # they only watch the training; the best model reloaded (helper-66)
        {"train_model": """
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    checkpoint_cb = keras.callbacks.ModelCheckpoint("my_keras_model.keras", save_best_only=True)
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid),
                        callbacks=[checkpoint_cb, keras.callbacks.CSVLogger("training.csv")])
    model.set_weights(keras.models.load_model("my_keras_model.keras").get_weights())  # roll back to the best
    return history
"""},
        100,
        {},
    ),
    "pandas_imported_for_the_curves": (  # Geron's curves; the grader has no pandas, and says so (helper-54 F2)
        {"train_model": """import pandas as pd
def train_model(model, X_train, y_train, X_valid, y_valid, epochs=30):
    history = model.fit(X_train, y_train, epochs=epochs, validation_data=(X_valid, y_valid))
    pd.DataFrame(history.history).plot(figsize=(8, 5))
    return history
"""},
        90,
        {"training": "No module named 'pandas'"},
    ),
    "plot_shown_then_the_current_figure_returned": (  # in Jupyter plt.show() closes it: gcf() is a new one
        {
            "plot_samples": """
def plot_samples(images, labels, n_rows=4, n_cols=10):
    plt.figure(figsize=(n_cols * 1.2, n_rows * 1.2))
    for index in range(n_rows * n_cols):
        plt.subplot(n_rows, n_cols, index + 1)
        plt.imshow(images[index], cmap="binary")
        plt.axis("off")
        plt.title(CLASS_NAMES[labels[index]], fontsize=8)
    plt.show()
    return plt.gcf()
"""
        },
        95,
        {"samples_plot": "the figure shows 0 images"},
    ),
    "plot_shown_then_its_figure_returned": (
        {
            "plot_samples": """
def plot_samples(images, labels, n_rows=4, n_cols=10):
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 1.2, n_rows * 1.2))
    for index, ax in enumerate(axes.flat):
        ax.imshow(images[index], cmap="binary")
        ax.set_axis_off()
        ax.set_title(CLASS_NAMES[labels[index]], fontsize=8)
    plt.show()
    return fig
"""
        },
        100,
        {},
    ),
    "predict_returns_one_number": (
        {"predict_labels": "\ndef predict_labels(model, images):\n    return np.argmax(model.predict(images))\n"},
        95,
        {"predict_labels": "returned one number"},
    ),
    "layers_named_in_chinese": (  # TensorFlow's fit refuses the names, in the student's notebook as in grading
        {"build_model": build_model_with(
            INPUT, 'keras.layers.Flatten(name="展平")', 'keras.layers.Dense(300, activation="relu", name="隐藏层1")',
            'keras.layers.Dense(100, activation="relu", name="隐藏层2")',
            'keras.layers.Dense(10, activation="softmax", name="输出层")',
        )},
        70,
        {"training": "TensorFlow cannot train a model with the name '展平'",
         "test_accuracy": "TensorFlow cannot train"},
    ),
    "model_named_with_spaces": (
        {"build_model": build_model_with(INPUT, FLATTEN, D300, D100, D10).replace(
            "    ])", '    ], name="Fashion MNIST classifier")')},
        70,
        {"training": "the name 'Fashion MNIST classifier'", "test_accuracy": "TensorFlow cannot train"},
    ),
    "sgd_with_the_old_lr_argument": (  # Keras 3 refuses `lr`: nothing trains, and each check says why
        {"compile_model": compile_with('"sparse_categorical_crossentropy"', "keras.optimizers.SGD(lr=0.01)")},
        55,
        {
            "compile": "`compile_model` raised",
            "training": "`compile_model` raised",
            "test_accuracy": "no model to measure: training failed: `compile_model` raised",
        },
    ),
    # --- broken notebooks ------------------------------------------------------------------------
    "syntax_error_in_normalize": (
        {"normalize": "\ndef normalize(images)\n    return images / 255.0\n"},
        90,
        {"normalize": "(`normalize`) has a syntax error on line 1"},
    ),
    "predict_labels_missing": (
        {
            "predict_labels": "\ndef predict_classes(model, images):\n"
            "    return np.argmax(model.predict(images), axis=-1)\n"
        },
        95,
        {"predict_labels": "`predict_labels` is not defined"},
    ),
    "split_raises_an_exception": (
        {
            "split_validation": """
def split_validation(images, labels, n_valid=5000):
    pairs = labels.reshape(-1, 7)
    return (images[n_valid:], labels[n_valid:]), (images[:n_valid], labels[:n_valid])
"""
        },
        90,
        {"split": "raised ValueError at line 2 of your cell"},
    ),
}

ALL_CHECKS = (
    "normalize",
    "split",
    "samples_plot",
    "model_architecture",
    "parameter_counts",
    "compile",
    "training",
    "test_accuracy",
    "predict_labels",
)


def fill(nb, functions: dict[str, str]):
    """The student notebook with every stub replaced by code (correct unless overridden)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in CORRECT:
            cell.source = functions.get(grade_id, CORRECT[grade_id]).strip("\n")
    return nb


def write_expected(name: str, score: int, failing: dict[str, str], error: str | None = None, note=None) -> None:
    expected = {"score": score, "error": error, "failing": failing, "note": note}
    (HERE / f"{name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def main() -> None:
    student = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    for name, (functions, score, failing) in SUBMISSIONS.items():
        nbformat.write(fill(student, functions), HERE / f"{name}.ipynb")
        write_expected(name, score, failing)
    # The tutorial's bug in a lesson cell: the model evaluated on raw test pixels. The grader measures the
    # accuracy itself on the normalized test set, so no points are lost; the report says what is wrong.
    nb = fill(student, {})
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("test_loss, test_accuracy = model.evaluate(X_test"):
            cell.source = cell.source.replace(
                "model.evaluate(X_test, y_test)", "model.evaluate(test_images, test_labels)"
            )
    nbformat.write(nb, HERE / "test_set_not_normalized.ipynb")
    write_expected("test_set_not_normalized", 100, {}, note="on test images that were not normalized")
    # Imports, constants and a helper in cells the student added, as one does in Jupyter; IPython's
    # help and display in the solution cells.
    nb = fill(student, {
        "build_model": build_model_with(
            "tf.keras.Input(shape=(28, 28))", "tf.keras.layers.Flatten()",
            'tf.keras.layers.Dense(300, activation="relu")', 'tf.keras.layers.Dense(100, activation="relu")',
            'tf.keras.layers.Dense(10, activation="softmax")'),
        "plot_samples": """
def plot_samples(images, labels, n_rows=N_ROWS, n_cols=N_COLS):
    fig = plt.figure(figsize=(n_cols * 1.2, n_rows * 1.2))
    for index in range(n_rows * n_cols):
        show_one(fig.add_subplot(n_rows, n_cols, index + 1), images[index], labels[index])
    display(fig)
    return fig
""",
        "compile_model": "keras.optimizers.SGD?\n" + CORRECT["compile_model"],
    })
    first = next(i for i, cell in enumerate(nb.cells) if cell.metadata.get("nbgrader", {}).get("solution"))
    nb.cells[first:first] = [  # ids of their own, as Jupyter gives, fixed so that the file is made the same each time
        nbformat.v4.new_code_cell("import tensorflow as tf\nN_ROWS, N_COLS = 4, 10\nprint(tf.__version__)",
                                  id="36c8562a"),
        nbformat.v4.new_code_cell('def show_one(ax, image, label):\n    ax.imshow(image, cmap="binary")\n'
                                  '    ax.axis("off")\n    ax.set_title(CLASS_NAMES[label], fontsize=8)',
                                  id="0124c097"),
    ]
    nbformat.write(nb, HERE / "imports_and_a_helper_in_cells_of_their_own.ipynb")
    write_expected("imports_and_a_helper_in_cells_of_their_own", 100, {})
    # A scratch cell at the end redefines a function: the grader runs the cells in order, so the last counts.
    nb = fill(student, {})
    nb.cells.append(nbformat.v4.new_code_cell(
        "def predict_labels(model, images):\n    return model.predict(images, verbose=0).argmax(axis=1)",
        id="5c7a09d1"))
    name = "predict_labels_defined_again_in_a_scratch_cell"
    nbformat.write(nb, HERE / f"{name}.ipynb")
    write_expected(name, 100, {}, note="`predict_labels` is defined in cells")
    # The released notebook as it is: every stub unfinished.
    nbformat.write(student, HERE / "unfilled_stubs.ipynb")
    write_expected("unfilled_stubs", 0, {check: "not done yet" for check in ALL_CHECKS})
    # Not a notebook at all: a damaged upload.
    (HERE / "not_json.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "def normalize(')
    write_expected("not_json", 0, {check: "not graded" for check in ALL_CHECKS}, error="not valid JSON")


if __name__ == "__main__":
    main()
