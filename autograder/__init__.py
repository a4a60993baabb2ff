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
