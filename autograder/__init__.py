"""Teaching and grading kit for the Keras Fashion-MNIST classifier assignment.

The public surface: ``grade_notebooks`` (grade a batch), ``self_check`` (a student's check of
their own notebook), ``load_functions`` (a notebook's functions), ``GradeReport`` (one
submission's result) and ``load_fashion_mnist`` (the data).

Importing the package stays cheap: TensorFlow is imported only by the modules that train or
inspect a model, and only when they are used, so that ``autograder --help`` answers at once. The
public names are therefore resolved on first use (PEP 562), from the module that defines each,
named by its path: the package itself imports none of the pipeline's stages, which all import it
(for ``__version__``).
"""

import threading

__version__ = "0.1.0"

PUBLIC = {
    "grade_notebooks": "autograder.batch.local",
    "self_check": "autograder.selfcheck",
    "load_functions": "autograder.submission.notebook",
    "GradeReport": "autograder.judge.report",
    "load_fashion_mnist": "autograder.data.fashion_mnist",
}
__all__ = ["__version__", *PUBLIC]


def __getattr__(name: str):
    if name not in PUBLIC:
        raise AttributeError(f"module 'autograder' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(PUBLIC[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *PUBLIC})


def skip_slow_optional_imports() -> None:
    """For the kit's own processes (the command line, the sandbox's child), before nbformat loads.

    nbformat validates with jsonschema, which builds a grammar for IRIs at import when the optional
    package rfc3987_syntax is installed (1.1 s here); no notebook check uses it. Not done on import
    of the package: a student's kernel keeps whatever its own code may need.
    """
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)  # None: `import` raises ImportError, which jsonschema expects


_import_for_good_lock = threading.Lock()


def import_for_good(*names: str) -> None:
    """Import modules that live as long as the process, with the cyclic garbage collector paused,
    then move every object that exists to the collector's permanent generation (``gc.freeze``).

    For TensorFlow and Keras in the kit's own processes (the grader, the trainer, the sandbox's
    child before the student's code runs). They make millions of objects at import, none of them
    garbage: the collector walking them again and again costs about 1.2 s of a 7.5 s import here
    (measured in docs/performance.md), and every later full collection, in the student's code too,
    would walk them again. Objects still go when their last reference does; only a cycle made
    before the call is kept for good.
    """
    import gc
    import importlib

    with _import_for_good_lock:  # two threads at once would leave the collector off
        enabled = gc.isenabled()
        gc.disable()
        try:
            for name in names:
                importlib.import_module(name)
        finally:
            gc.freeze()
            if enabled:
                gc.enable()
