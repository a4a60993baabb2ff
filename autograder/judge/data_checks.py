"""The data and plot checks: ``normalize``, ``split`` and ``samples_plot``.

Each takes the ``Evidence`` of what the student's function produced on the kit's own training
images and labels, and returns a message or raises ``CheckFailed`` naming the mistake.
"""

from __future__ import annotations

import numpy as np

from autograder.assignment import N_VALID
from autograder.data.fashion_mnist import CLASS_NAMES
from autograder.data.inputs import NORMALIZE_SAMPLE, PLOT_SAMPLES, SPLIT_SMALL
from autograder.errors import CheckFailed
from autograder.i18n import _
from autograder.judge.evidence import Evidence
from autograder.judge.svg_figure import read_svg_axes_checked, shown_images


def check_normalize(ev: Evidence) -> str:
    ev.produced("normalize")
    images = ev.data.train_images[:NORMALIZE_SAMPLE]
    if not np.array_equal(ev.array("normalize_input_after"), images):
        raise CheckFailed(_(
            "`normalize` changed the array it was given: return a new array (images / 255) "
            "instead of dividing in place"
        ))
    scaled = ev.array("normalize_output")
    if scaled.shape != images.shape:
        raise CheckFailed(_("`normalize` returned shape {shape}; keep the shape {expected}").format(
            shape=scaled.shape, expected=images.shape))
    if not np.issubdtype(scaled.dtype, np.floating):
        if np.array_equal(scaled, images):
            raise CheckFailed(_(
                "the images are not scaled: `normalize` returned the pixels 0–255 unchanged; divide by 255"
            ))
        raise CheckFailed(_(
            "`normalize` returned {dtype} values: the result must be floating point "
            "(integer division `//` or casting back to uint8 loses everything between 0 and 1)"
        ).format(dtype=scaled.dtype))
    expected = images / 255.0
    if np.allclose(scaled, images):
        raise CheckFailed(_("the images are not scaled: the values still go up to 255; divide them by 255"))
    if np.allclose(scaled, expected / 255.0, atol=1e-7):
        raise CheckFailed(_("the images are scaled twice: the values only reach 1/255; divide by 255 once"))
    if not np.allclose(scaled, expected, atol=1e-6):
        raise CheckFailed(_(
            "`normalize` gives values from {low} to {high}, not images / 255 "
            "(0 to 1): divide the pixels by 255 and nothing else"
        ).format(low=f"{scaled.min():.4g}", high=f"{scaled.max():.4g}"))
    dark = ev.array("normalize_dark_output")
    if dark.shape != images.shape or not np.allclose(dark, (images // 2) / 255.0, atol=1e-6):
        raise CheckFailed(_(
            "`normalize` scales images by something of their own (their brightest pixel?), not by 255: images "
            "whose brightest pixel is 127 do not come out as images / 255; divide the pixels by 255"
        ))
    return _("{dtype} values in [0, 1], equal to images / 255, input unchanged").format(dtype=scaled.dtype)


def check_split(ev: Evidence) -> str:
    ev.produced("split")
    X, y = ev.data.train_scaled, ev.data.train_labels
    X_train, y_train, X_valid, y_valid = (ev.array(f"split_{n}") for n in ("X_train", "y_train", "X_valid", "y_valid"))
    n_train = len(X) - N_VALID
    if X_train.shape[:1] == (N_VALID,) and X_valid.shape[:1] == (n_train,):
        raise CheckFailed(_(
            "the validation set came first: return ((X_train, y_train), (X_valid, y_valid)), training set first"
        ))
    if y_train.shape == (N_VALID, 28, 28) and X_valid.shape == (n_train,):
        raise CheckFailed(_(
            "the arrays are grouped by kind, images with images: return ((X_train, y_train), (X_valid, y_valid)), "
            "each set's images with its labels"
        ))
    if X_train.shape != (n_train, 28, 28) or X_valid.shape != (N_VALID, 28, 28):
        raise CheckFailed(_(
            "X_train has shape {train} and X_valid {valid}; expected ({n_train}, 28, 28) and ({n_valid}, 28, 28)"
        ).format(train=X_train.shape, valid=X_valid.shape, n_train=n_train, n_valid=N_VALID))
    if y_train.shape != (n_train,) or y_valid.shape != (N_VALID,):
        raise CheckFailed(_(
            "y_train has shape {train} and y_valid {valid}; expected ({n_train},) and ({n_valid},)"
        ).format(train=y_train.shape, valid=y_valid.shape, n_train=n_train, n_valid=N_VALID))
    for labels, original in ((y_valid, y[:N_VALID]), (y_train, y[N_VALID:])):
        if not np.issubdtype(labels.dtype, np.integer):
            if np.allclose(labels, original / 255.0):
                raise CheckFailed(_(
                    "the labels were divided by 255: they must stay integer classes 0–9 (scale only the images)"
                ))
            if np.array_equal(labels, original):
                raise CheckFailed(_("the labels were turned into {dtype}: keep them integer classes 0–9").format(
                    dtype=labels.dtype))
    if np.allclose(X_valid, X[:N_VALID] / 255.0):
        raise CheckFailed(_(
            "the images were scaled again: `split_validation` is given normalized images, so split them as they are"
        ))
    if np.array_equal(X_valid, X[-N_VALID:]):
        raise CheckFailed(_("the validation set was taken from the end: it must be the first {n_valid} images").format(
            n_valid=N_VALID))
    if not np.array_equal(X_valid, X[:N_VALID]):
        raise CheckFailed(_(
            "the validation images are not the first {n_valid} in their original order "
            "(were they shuffled?): take images[:{n_valid}]"
        ).format(n_valid=N_VALID))
    if not np.array_equal(X_train, X[N_VALID:]):
        raise CheckFailed(_("the training images must be all the others, in order: images[{n_valid}:]").format(
            n_valid=N_VALID))
    if not (np.array_equal(y_valid, y[:N_VALID]) and np.array_equal(y_train, y[N_VALID:])):
        raise CheckFailed(_("the labels do not match their images: split the labels exactly like the images"))
    # n_valid must be honoured, not hard-coded.
    n_small, n_valid_small = SPLIT_SMALL
    lengths = ev.artifacts.values.get("split_small_lengths")
    if lengths != [n_small - n_valid_small, n_small - n_valid_small, n_valid_small, n_valid_small]:
        raise CheckFailed(_("`split_validation` ignores its n_valid argument: use n_valid instead of 5000"))
    return _("first {n_valid} images for validation, {n_train} for training, integer labels unchanged").format(
        n_valid=N_VALID, n_train=n_train)


def check_samples_plot(ev: Evidence) -> str:
    ev.produced("samples_plot")
    svg = ev.artifacts.values.get("plot_svg")
    if not isinstance(svg, str):
        raise CheckFailed(_("the grader received no drawing of your figure"))
    axes = read_svg_axes_checked(svg)
    count, titles, axes_on = len(axes), [a.title for a in axes], [a.axes_on for a in axes]
    problems = []
    if count != 40:
        problems.append(_("the figure shows {count} images; a 4×10 grid shows 40 (one per axes, imshow)").format(
            count=count))
    expected = [CLASS_NAMES[label] for label in ev.data.train_labels[:40]]
    if titles[:40] != expected[: len(titles)]:
        problems.append(title_problem(titles, expected))
    problems += image_problems(shown_images(axes[:40]), ev.data.train_images[:PLOT_SAMPLES])
    if any(axes_on):
        if all(axes_on):
            problems.append(_("the axes are on (every image draws its ticks and frame): turn them off with "
                              "ax.axis('off')"))
        else:
            problems.append(_("the axes are on ({on} of the {count} images draws its ticks and frame): turn them off "
                              "with ax.axis('off')").format(on=sum(axes_on), count=count))
    if problems:
        raise CheckFailed("; ".join(problems))
    return _("40 images in a 4×10 grid, each titled with its class name, axes off")


# How alike an image must be to a sample it is not placed for, and how much more than to its own, to be taken
# for that sample: the lesson's figure in any usual colormap shows each sample at 0.95 or more, and no other
# of the 60 samples above 0.93 (benchmarked on the real images).
SAME_IMAGE = 0.97
CLEARER = 0.05
# Whether an image shows its own sample, whatever the colormap: how much of the image's gray levels the
# sample's levels explain (``explained``: a correlation ratio over the sample's own levels, adjusted for their
# number, the image taken either way up), which any colormap leaves near 1 (flag and prism too: 0.91 and up at
# the usual sizes, 0.64 and up for a figure of 3×1.2 inches or at 20 dpi), and noise, another image, the sample
# transposed or shifted by 2 pixels, or a payload in its background leave low (medians of 0.02–0.54).
# One image is judged loosely: another item of the same shape can reach 0.8 (their backgrounds agree), and a
# figure at 20 dpi blurs its own; the figure as a whole strictly, by the median.
NOT_ITS_SAMPLE = 0.5  # below it, an image shows something else
SHOWN_BY_MOST = 0.75  # the median over the images, below which they do not show their samples


def explained(image: np.ndarray, sample: np.ndarray) -> float:
    """The share of ``image``'s gray levels that ``sample``'s levels explain: near 1 when the image is any
    function of the sample (a colormap, even one that repeats), near 0 for anything else. The image is taken
    either way up (``origin='lower'`` draws it upside down)."""
    levels, groups = np.unique(sample.ravel(), return_inverse=True)
    counts, n = np.bincount(groups), groups.size
    best = 0.0
    for shown in (image.ravel(), np.flipud(image).ravel()):
        total = ((shown - shown.mean()) ** 2).sum()
        if total <= 1e-9:
            continue
        means = np.bincount(groups, weights=shown) / counts
        share = 1 - ((shown - means[groups]) ** 2).sum() / total
        best = max(best, 1 - (1 - share) * (n - 1) / max(n - len(levels), 1))  # as many levels as pixels: none
    return float(best)


def image_problems(shown: list, samples: np.ndarray) -> list[str]:
    """What the images show, where it is wrong: none at all (blank), another sample than the one for their
    place (``shown[i]`` should show ``samples[i]``), or something that is not their sample. ``shown``: 28×28
    gray levels, None where the drawing's image cannot be read."""
    vectors = samples.reshape(len(samples), -1).astype(np.float64)
    vectors -= vectors.mean(axis=1, keepdims=True)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unreadable, blank, wrong, shares = [], [], [], {}
    for position, image in enumerate(shown):
        if image is None:
            unreadable.append(position)
            continue
        flat = image.ravel() - image.mean()
        if np.linalg.norm(flat) < 1e-6:
            blank.append(position)
            continue
        alike = np.abs(vectors @ (flat / np.linalg.norm(flat)))  # either way up: a colormap may invert
        best = int(np.argmax(alike))
        own = alike[position] if position < len(alike) else 0.0
        if best != position and alike[best] >= SAME_IMAGE and own < alike[best] - CLEARER:
            wrong.append((position, best))
        elif position < len(samples):
            shares[position] = explained(image, samples[position])
    unlike = [position for position, share in shares.items() if share < NOT_ITS_SAMPLE]
    if not unlike and shares and np.median(list(shares.values())) < SHOWN_BY_MOST:
        unlike = [min(shares, key=shares.get)]
    return shown_problems(unreadable, blank, wrong, unlike)


def shown_problems(unreadable: list, blank: list, wrong: list, unlike: list) -> list[str]:
    problems = []
    if unreadable:
        problems.append(_("the grader could not read image {position} of the drawing").format(
            position=unreadable[0] + 1))
    if len(blank) == 1:
        problems.append(_("image {position} is blank: show each sample with ax.imshow(images[i], cmap='binary')")
                        .format(position=blank[0] + 1))
    elif blank:
        problems.append(_("{count} images are blank: show each sample with ax.imshow(images[i], cmap='binary')")
                        .format(count=len(blank)))
    if wrong:
        position, best = wrong[0]
        problems.append(_(
            "image {position} shows sample {shown}, not sample {position} ({count} of the images show another "
            "sample than their place's): draw images[i] in the i-th axes, row by row"
        ).format(position=position + 1, shown=best + 1, count=len(wrong)))
    elif unlike:
        problems.append(_(
            "the images do not show their samples (image {position} does not show sample {position}): draw "
            "images[i] itself in the i-th axes, row by row, with ax.imshow(images[i], cmap='binary')"
        ).format(position=unlike[0] + 1))
    return problems


def title_problem(titles: list[str], expected: list[str]) -> str:
    """What is wrong with the titles, as the student wrote them: numbers, or the wrong names."""
    pairs = list(zip(titles, expected))
    first = next(i for i, (got, want) in enumerate(pairs) if got != want)
    got = titles[first]
    if all(got.strip().isdigit() for got, _want in pairs):
        return _(
            "the images are titled with label numbers ({got} instead of {expected}): "
            "title each image with its class name, CLASS_NAMES[label]"
        ).format(got=repr(got), expected=repr(expected[first]))
    wrong = sum(got != want for got, want in pairs)
    if wrong > 1:
        text = _("{wrong} images are not titled with their class name: image {position} is titled {got} but shows "
                 "a {expected} (use CLASS_NAMES[label])")
    else:
        text = _("{wrong} image is not titled with its class name: image {position} is titled {got} but shows "
                 "a {expected} (use CLASS_NAMES[label])")
    return text.format(wrong=wrong, position=first + 1, got=repr(got), expected=repr(expected[first]))
