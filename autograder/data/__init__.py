"""The kit's data: the Fashion-MNIST loader, the reference arrays, and the sandbox's inputs made from them.

``from autograder.data import load_fashion_mnist`` is the lesson's set-up cell: it stays here.
"""

from autograder.data.fashion_mnist import load_fashion_mnist

__all__ = ["load_fashion_mnist"]
