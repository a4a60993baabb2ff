"""Teaching and grading kit for the Keras Fashion-MNIST classifier assignment.

Importing the package stays cheap: TensorFlow is imported only by the modules that train or
inspect a model, and only when they are used, so that ``autograder --help`` answers at once.
"""

__version__ = "0.1.0"


def skip_slow_optional_imports() -> None:
    """For the kit's own processes (the command line, the sandbox's child), before nbformat loads.

    nbformat validates with jsonschema, which builds a grammar for IRIs at import when the optional
    package rfc3987_syntax is installed (1.1 s here); no notebook check uses it. Not done on import
    of the package: a student's kernel keeps whatever its own code may need.
    """
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)  # None: `import` raises ImportError, which jsonschema expects
