"""Teaching and grading kit for the Keras Fashion-MNIST classifier assignment.

Importing the package stays cheap: TensorFlow is imported only by the modules that train or
inspect a model, and only when they are used, so that ``autograder --help`` answers at once.
"""

__version__ = "0.1.0"
