"""The data and plot checks: ``normalize``, ``split`` and ``samples_plot``.

Each takes the ``Evidence`` of what the student's function produced on the kit's own training
images and labels, and returns a message or raises ``CheckFailed`` naming the mistake.
"""

from __future__ import annotations

import numpy as np

from autograder.assignment import N_VALID
from autograder.data.fashion_mnist import CLASS_NAMES
from autograder.data.inputs import NORMALIZE_SAMPLE, SPLIT_SMALL
from autograder.errors import CheckFailed
from autograder.judge.evidence import Evidence
from autograder.judge.svg_figure import read_svg_figure_checked as read_svg_figure


def check_normalize(ev: Evidence) -> str:
    ev.produced("normalize")
    images = ev.data.train_images[:NORMALIZE_SAMPLE]
    if not np.array_equal(ev.array("normalize_input_after"), images):
        raise CheckFailed(
            "`normalize` changed the array it was given: return a new array (images / 255) "
            "instead of dividing in place"
        )
    scaled = ev.array("normalize_output")
    if scaled.shape != images.shape:
        raise CheckFailed(f"`normalize` returned shape {scaled.shape}; keep the shape {images.shape}")
    if not np.issubdtype(scaled.dtype, np.floating):
        if np.array_equal(scaled, images):
            raise CheckFailed(
                "the images are not scaled: `normalize` returned the pixels 0–255 unchanged; divide by 255"
            )
        raise CheckFailed(
            f"`normalize` returned {scaled.dtype} values: the result must be floating point "
            "(integer division `//` or casting back to uint8 loses everything between 0 and 1)"
        )
    expected = images / 255.0
    if np.allclose(scaled, images):
        raise CheckFailed("the images are not scaled: the values still go up to 255; divide them by 255")
    if np.allclose(scaled, expected / 255.0, atol=1e-7):
        raise CheckFailed("the images are scaled twice: the values only reach 1/255; divide by 255 once")
    if not np.allclose(scaled, expected, atol=1e-6):
        raise CheckFailed(
            f"`normalize` gives values from {scaled.min():.4g} to {scaled.max():.4g}, not images / 255 "
            "(0 to 1): divide the pixels by 255 and nothing else"
        )
    return f"{scaled.dtype} values in [0, 1], equal to images / 255, input unchanged"


def check_split(ev: Evidence) -> str:
    ev.produced("split")
    X, y = ev.data.train_scaled, ev.data.train_labels
    X_train, y_train, X_valid, y_valid = (ev.array(f"split_{n}") for n in ("X_train", "y_train", "X_valid", "y_valid"))
    n_train = len(X) - N_VALID
    if X_train.shape[:1] == (N_VALID,) and X_valid.shape[:1] == (n_train,):
        raise CheckFailed(
            "the validation set came first: return ((X_train, y_train), (X_valid, y_valid)), training set first"
        )
    if X_train.shape != (n_train, 28, 28) or X_valid.shape != (N_VALID, 28, 28):
        raise CheckFailed(
            f"X_train has shape {X_train.shape} and X_valid {X_valid.shape}; expected "
            f"({n_train}, 28, 28) and ({N_VALID}, 28, 28)"
        )
    if y_train.shape != (n_train,) or y_valid.shape != (N_VALID,):
        raise CheckFailed(
            f"y_train has shape {y_train.shape} and y_valid {y_valid.shape}; expected ({n_train},) and ({N_VALID},)"
        )
    for labels, original in ((y_valid, y[:N_VALID]), (y_train, y[N_VALID:])):
        if not np.issubdtype(labels.dtype, np.integer):
            if np.allclose(labels, original / 255.0):
                raise CheckFailed(
                    "the labels were divided by 255: they must stay integer classes 0–9 (scale only the images)"
                )
            if np.array_equal(labels, original):
                raise CheckFailed(f"the labels were turned into {labels.dtype}: keep them integer classes 0–9")
    if np.array_equal(X_valid, X[-N_VALID:]):
        raise CheckFailed(f"the validation set was taken from the end: it must be the first {N_VALID} images")
    if not np.array_equal(X_valid, X[:N_VALID]):
        raise CheckFailed(
            f"the validation images are not the first {N_VALID} in their original order "
            f"(were they shuffled?): take images[:{N_VALID}]"
        )
    if not np.array_equal(X_train, X[N_VALID:]):
        raise CheckFailed(f"the training images must be all the others, in order: images[{N_VALID}:]")
    if not (np.array_equal(y_valid, y[:N_VALID]) and np.array_equal(y_train, y[N_VALID:])):
        raise CheckFailed("the labels do not match their images: split the labels exactly like the images")
    # n_valid must be honoured, not hard-coded.
    n_small, n_valid_small = SPLIT_SMALL
    lengths = ev.artifacts.values.get("split_small_lengths")
    if lengths != [n_small - n_valid_small, n_small - n_valid_small, n_valid_small, n_valid_small]:
        raise CheckFailed("`split_validation` ignores its n_valid argument: use n_valid instead of 5000")
    return f"first {N_VALID} images for validation, {n_train} for training, integer labels unchanged"


def check_samples_plot(ev: Evidence) -> str:
    ev.produced("samples_plot")
    svg = ev.artifacts.values.get("plot_svg")
    if not isinstance(svg, str):
        raise CheckFailed("the grader received no drawing of your figure")
    count, titles, axes_on = read_svg_figure(svg)
    problems = []
    if count != 40:
        problems.append(f"the figure shows {count} images; a 4×10 grid shows 40 (one per axes, imshow)")
    expected = [CLASS_NAMES[label] for label in ev.data.train_labels[:40]]
    if titles[:40] != expected[: len(titles)]:
        problems.append(title_problem(titles, expected))
    if any(axes_on):
        shown = "every image" if all(axes_on) else f"{sum(axes_on)} of the {count} images"
        problems.append(f"the axes are on ({shown} draws its ticks and frame): turn them off with ax.axis('off')")
    if problems:
        raise CheckFailed("; ".join(problems))
    return "40 images in a 4×10 grid, each titled with its class name, axes off"


def title_problem(titles: list[str], expected: list[str]) -> str:
    """What is wrong with the titles, as the student wrote them: numbers, or the wrong names."""
    pairs = list(zip(titles, expected))
    first = next(i for i, (got, want) in enumerate(pairs) if got != want)
    got = titles[first]
    if all(got.strip().isdigit() for got, _ in pairs):
        return (
            f"the images are titled with label numbers ({got!r} instead of {expected[first]!r}): "
            "title each image with its class name, CLASS_NAMES[label]"
        )
    wrong = sum(got != want for got, want in pairs)
    return (
        f"{wrong} image{'s are' if wrong > 1 else ' is'} not titled with {'their' if wrong > 1 else 'its'} class "
        f"name: image {first + 1} is titled {got!r} but shows a {expected[first]!r} (use CLASS_NAMES[label])"
    )
