"""nbgrader configuration: the course root is this repository.

nbgrader's `source` folder is `solutions/` (the instructor's notebooks with solutions and tests) and its
`release` folder is `assignments/` (what students get), so `nbgrader generate_assignment fashion_mnist`
writes `assignments/fashion_mnist/fashion_mnist_classifier.ipynb`.
"""

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# The notebook trains a network for 30 epochs (a few minutes on a laptop's CPU) and the grader
# trains it once more; nbgrader's default of 30 s per cell would cut both off.
c.Execute.timeout = 1200
