"""Run a submission's functions on the kit's inputs and keep only what they produced, as plain data.

This is the only module that calls student code while grading. It runs wherever the student's
code runs — in the sandbox's child process when grading (``autograder.sandbox.child``), or
in-process for a student's self-check and in nbgrader's kernel — and produces an ``Artifacts``
record: numpy arrays, JSON-able values, and Keras models, under the names that
``autograder.sandbox.artifacts`` declares. When it runs in the sandbox, the artifacts are written
to files that the trusted process reads back without ever unpickling them, and the checks judge
only those. The training is not among them: the student's ``fit`` calls only describe it to the
kit's trainer (``autograder.sandbox.fit_client``), whose record the grader keeps.

Nothing here decides a grade; a probe that raises becomes a message in the student's terms.
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Any, Callable

import numpy as np

from autograder.assignment import EPOCHS, N_VALID, SEED
from autograder.data.inputs import NORMALIZE_SAMPLE, PLOT_SAMPLES, SPLIT_SMALL
from autograder.errors import StudentError, TimeLimitExceeded, TrainingNotReproducible
from autograder.i18n import _
from autograder.limits import exception_words, not_the_student_s, time_limit
from autograder.sandbox.artifacts import Artifacts

# The lesson's data (the tutorial's cells): a function that reads it worked in Jupyter. Not ``model`` or
# ``history``, which a function that fails on them should have assigned itself.
LESSON_VARIABLES = {"X_train_full", "y_train_full", "X_train", "y_train", "X_valid", "y_valid", "X_test", "y_test",
                    "X_new", "y_new", "fashion_mnist"}


def describe_exception(name: str, error: BaseException) -> str:
    """`name` raised X at line N of your cell (code): message — or "not done yet" for a stub."""
    if isinstance(error, NotImplementedError):
        return _("not done yet: `{name}` still raises NotImplementedError; replace it with your code").format(name=name)
    where = None
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith("<") and " cell " in frame.filename:
            where = (frame.lineno, (frame.line or "").strip())
            break
    kind, text = exception_words(error)
    lines = text.strip().splitlines()
    summary = lines[0][:300] if lines else ""
    if where is None:
        return _("`{name}` raised {error}: {summary}").format(name=name, error=kind, summary=summary)
    return _("`{name}` raised {error} at line {line} of your cell ({code}): {summary}").format(
        name=name, error=kind, line=where[0], code=where[1], summary=summary)


class Prober:
    """Calls the student's functions with the kit's inputs and records what comes back."""

    def __init__(self, functions: dict[str, Callable | None], cell_errors: list[str] = (), call_seconds=None):
        self.functions = functions
        self.cell_errors = list(cell_errors)
        self.call_seconds = call_seconds
        self.artifacts = Artifacts()

    def call(self, name: str, *args, seconds: float | None = None, **kwargs):
        function = self.functions.get(name)
        if function is None:
            causes = [e for e in self.cell_errors if f"`{name}`" in e] or self.cell_errors
            if causes:
                raise StudentError(_(
                    "`{name}` is not defined ({causes}): write it in its solution cell with exactly that name"
                ).format(name=name, causes="; ".join(causes)))
            raise StudentError(
                _("`{name}` is not defined: write it in its solution cell with exactly that name").format(name=name))
        limit = seconds or self.call_seconds
        try:
            with time_limit(limit):
                return function(*args, **kwargs)
        except TimeLimitExceeded:
            raise StudentError(_("`{name}` ran longer than {seconds} s and was stopped (an endless loop?)").format(
                name=name, seconds=f"{limit:g}")) from None
        except NotImplementedError as error:
            raise StudentError(describe_exception(name, error), not_done=True) from None
        except TrainingNotReproducible as error:
            raise StudentError(str(error)) from None
        except StudentError:
            raise
        except BaseException as error:  # sys.exit() or the student's own BaseException: a failure, not an exit
            if not_the_student_s(error):
                raise
            message = describe_exception(name, error)
            causes = [cell for cell in self.cell_errors if isinstance(error, NameError) and (
                "ImportError" in cell or "ModuleNotFoundError" in cell or f"'{error.name}'" in cell)]
            if causes:  # the name a failed import would have given, or a line that failed to assign it
                message = _("{message}; before that, {causes}").format(message=message, causes="; ".join(causes))
            elif isinstance(error, NameError) and getattr(error, "name", None) in LESSON_VARIABLES:
                message = _(
                    "{message} (`{variable}` is a variable of the lesson's other cells, which grading does not run: "
                    "use what the function is given, its arguments)").format(message=message, variable=error.name)
            raise StudentError(message) from None

    def run(self, probe: str, body: Callable[[], None]) -> None:
        try:
            body()
        except StudentError as error:
            self.artifacts.errors[probe] = str(error)
            if error.not_done:
                self.artifacts.not_done.add(probe)
        except Exception as error:  # what the student returned tripped the probe: still a result
            self.artifacts.errors[probe] = _("what `{probe}` produced could not be read: {error}").format(
                probe=probe, error=": ".join(exception_words(error)))


def plain_array(value: Any, what: str) -> np.ndarray:
    """A real numpy array of numbers from whatever was returned (a Tensor, a list, an impostor)."""
    if value is None:
        raise StudentError(_("{what} returned None: add a `return` statement").format(what=what))
    try:
        array = np.array(value, copy=True, order="C")  # a number stays one (shape ()), unlike ascontiguousarray's
    except Exception:
        raise StudentError(_("{what} returned a {kind}, which is not an array").format(
            what=what, kind=type(value).__name__)) from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise StudentError(_("{what} returned a {kind}, which is not an array of numbers").format(
            what=what, kind=type(value).__name__))
    return array


def probe_normalize(p: Prober, inputs) -> None:
    images = inputs.train_images[:NORMALIZE_SAMPLE].copy()
    result = p.call("normalize", images)
    p.artifacts.arrays["normalize_input_after"] = np.array(images, copy=True)
    p.artifacts.arrays["normalize_output"] = plain_array(result, "`normalize`")
    # The same images darker, their brightest pixel 127: scaled by their own maximum or range, they come out
    # otherwise than divided by 255, which the lesson's images, reaching 255, cannot tell.
    dark = p.call("normalize", inputs.train_images[:NORMALIZE_SAMPLE] // 2)
    p.artifacts.arrays["normalize_dark_output"] = plain_array(dark, "`normalize`")


def unpack_split(result: Any) -> list[np.ndarray]:
    try:
        (X_train, y_train), (X_valid, y_valid) = result
    except (TypeError, ValueError):
        raise StudentError(_("`split_validation` must return ((X_train, y_train), (X_valid, y_valid))")) from None
    return [plain_array(part, "`split_validation`") for part in (X_train, y_train, X_valid, y_valid)]


def probe_split(p: Prober, inputs) -> None:
    X, y = inputs.train_scaled, inputs.train_labels
    parts = unpack_split(p.call("split_validation", X, y))
    for name, part in zip(("X_train", "y_train", "X_valid", "y_valid"), parts):
        p.artifacts.arrays[f"split_{name}"] = part
    n, n_valid = SPLIT_SMALL
    small = unpack_split(p.call("split_validation", X[:n], y[:n], n_valid=n_valid))
    p.artifacts.values["split_small_lengths"] = [int(len(part)) for part in small]


def probe_samples_plot(p: Prober, inputs) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = set(plt.get_fignums())
    try:
        with shown_as_in_jupyter(plt):
            fig = p.call("plot_samples", inputs.train_scaled[:PLOT_SAMPLES], inputs.train_labels[:PLOT_SAMPLES])
        if not isinstance(fig, Figure):
            raise StudentError(_(
                "`plot_samples` returned {kind}, not the Figure: create it with `fig, axes = plt.subplots(...)` "
                "and `return fig`"
            ).format(kind=type(fig).__name__))
        # The figure itself, drawn as SVG with its text kept as text: the grader reads the images,
        # titles and axes from the drawing, not from anything this process says about it.
        import io

        import matplotlib

        drawing = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.image_inline": True}):
            fig.savefig(drawing, format="svg")
        p.artifacts.values["plot_svg"] = drawing.getvalue()
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


@contextlib.contextmanager
def shown_as_in_jupyter(plt):
    """``plt.show()`` as Jupyter's inline backend does it (a window's too, once closed): the figures
    shown are closed, so ``plt.show(); return plt.gcf()`` returns a new, empty figure here as in the
    student's notebook, where its check cell says so. Agg's own show keeps them open."""
    backend = plt._get_backend_mod()
    own = vars(backend).get("show", None)
    backend.show = staticmethod(lambda *args, **kwargs: plt.close("all"))
    try:
        yield
    finally:
        if own is None:
            del backend.show
        else:
            backend.show = own


def probe_build_model(p: Prober, inputs) -> None:
    import keras

    model = p.call("build_model")
    if model is None:
        raise StudentError(_("`build_model` returned None: `return model`"))
    if not isinstance(model, keras.Model):
        raise StudentError(_("`build_model` returned a {kind}, not a Keras model").format(kind=type(model).__name__))
    p.artifacts.models["built"] = model


def probe_compile(p: Prober, inputs) -> None:
    from autograder.data.reference import build_reference_model

    given = build_reference_model()
    compiled = p.call("compile_model", given)
    if compiled is None and getattr(given, "compiled", False):
        # compiled in place but not returned: the check names that and every other mistake at once
        p.artifacts.values["compile_returned_none"] = True
        compiled = given
    if compiled is None:
        raise StudentError(_("`compile_model` returned None: compile the model and `return model`"))
    if not getattr(compiled, "compiled", False):
        raise StudentError(_("the model is not compiled: call model.compile(loss=..., optimizer=..., metrics=[...])"))
    p.artifacts.models["compiled"] = compiled


def build_compile_train(p: Prober, X_train, y_train, X_valid, y_valid, *, client, epochs: int = EPOCHS,
                        seed: int = SEED, seconds=None):
    """Build, compile and train with the student's functions, seeded as the lesson is, every
    ``fit`` call going to the kit's trainer through ``client`` (``autograder.sandbox.fit_client``).

    Returns the compiled model, what ``train_model`` returned and whether that is a History one of
    its ``fit`` calls returned (two calls' merged into the first's is); raises ``StudentError`` saying
    which function failed and how."""
    import keras

    keras.utils.set_random_seed(seed)
    model = p.call("build_model")
    compiled = p.call("compile_model", model)
    if compiled is None:
        raise StudentError(_("`compile_model` returned None: return the compiled model"))
    client.known = {"X_train": X_train, "y_train": y_train, "X_valid": X_valid, "y_valid": y_valid}
    before = len(client.histories)
    with client.installed(compiled):
        history = p.call("train_model", compiled, X_train, y_train, X_valid, y_valid, epochs=epochs, seconds=seconds)
    return compiled, history, any(history is returned for returned in client.histories[before:])


EPOCHS_PROBE = 2  # the epochs of the short call that proves train_model passes its epochs on


def short_call_epochs(epochs: int) -> int:
    """The short call's epochs: ``EPOCHS_PROBE``, or 3 where the training graded asks for 2 (a config's
    epochs), so that a ``train_model`` that writes that number itself never passes both calls."""
    return EPOCHS_PROBE if epochs != EPOCHS_PROBE else EPOCHS_PROBE + 1


def epochs_probe_model():
    """The kit's small model for the short call: a softmax regression no student builds for this lesson
    (its kernel starts at zeros), so the trainer's record tells its calls from the training graded."""
    import keras

    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model


def probe_epochs(p: Prober, X_train, y_train, X_valid, y_valid, *, client, seconds=None,
                 epochs: int = EPOCHS) -> str | None:
    """``train_model`` once more, before the training graded (of ``epochs``), on the kit's small
    model with ``epochs=short_call_epochs(epochs)`` and the sets' roles swapped (the validation set
    to train on, the training set to validate on): the trainer's record of it shows whether the
    function passes on the epochs and the arrays it is given, or uses numbers and arrays of its own.
    Cheap: 5,000 images a few times, and the same description for every correct submission, so a
    batch trains it once. Returns why it failed, or None."""
    model = epochs_probe_model()
    client.known = {"X_train": X_train, "y_train": y_train, "X_valid": X_valid, "y_valid": y_valid}
    try:
        with client.installed(model):
            p.call("train_model", model, X_valid, y_valid, X_train, y_train, epochs=short_call_epochs(epochs),
                   seconds=seconds)
    except StudentError as error:
        return str(error)
    return None


def probe_training(p: Prober, inputs, *, client, seconds=None, epochs: int = EPOCHS) -> None:
    """What the student's code says about its training (``train_model`` asked for ``epochs``). The
    training itself is the trainer's record, which the grader keeps; here only what it returned is noted."""
    X_train, y_train = inputs.train_scaled[N_VALID:], inputs.train_labels[N_VALID:]
    X_valid, y_valid = inputs.train_scaled[:N_VALID], inputs.train_labels[:N_VALID]
    short_error = probe_epochs(p, X_train, y_train, X_valid, y_valid, client=client, seconds=seconds, epochs=epochs)
    # Where the short call's fit calls end among the trainer's records, even if the training fails.
    record = p.artifacts.values["training"] = {"epochs_probe_calls": client.calls, "epochs_probe_error": short_error}
    try:
        _model, history, from_fit = build_compile_train(p, X_train, y_train, X_valid, y_valid, client=client,
                                                     seconds=seconds, epochs=epochs)
    except StudentError as error:
        raise StudentError(_("training failed: {reason}").format(reason=error), error.not_done) from None
    record.update({
        "returned": type(history).__name__,
        "returned_the_history": from_fit,
        "fit_calls": client.calls,
    })


def probe_predict_labels(p: Prober, inputs) -> None:
    from autograder.data.reference import prediction_model

    model = prediction_model()
    images = inputs.X_test_sample
    p.artifacts.arrays["predict_output"] = plain_array(p.call("predict_labels", model, images), "`predict_labels`")


PROBES: tuple[tuple[str, Callable], ...] = (
    ("normalize", probe_normalize),
    ("split", probe_split),
    ("samples_plot", probe_samples_plot),
    ("build_model", probe_build_model),
    ("compile", probe_compile),
    ("training", probe_training),
    ("predict_labels", probe_predict_labels),
)


def collect(
    functions,
    inputs,
    *,
    cell_errors=(),
    client=None,
    call_seconds: float | None = None,
    training_seconds: float | None = None,
    epochs: int = EPOCHS,
) -> Artifacts:
    """Run every probe and return what they produced; the training probe only with a ``client``
    (``autograder.sandbox.fit_client.FitClient``) through which its fit calls reach the kit's trainer,
    asking ``train_model`` for ``epochs`` (the config's)."""
    import warnings

    prober = Prober(functions, cell_errors, call_seconds)
    for name, probe in PROBES:
        if name == "training" and client is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a student's warnings are not failures
            if name == "training":
                prober.run(
                    name,
                    lambda: probe(prober, inputs, client=client, seconds=training_seconds, epochs=epochs),
                )
            else:
                prober.run(name, lambda probe=probe: probe(prober, inputs))
    return prober.artifacts
