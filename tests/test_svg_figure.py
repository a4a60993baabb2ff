"""The samples figure is read from its SVG drawing in one pass, with bounds, titles without tick labels.

``oracle_read_svg_figure`` reads the drawing the plain way (a tree, then a walk of each group, quadratic
in nested groups): the one-pass reader must agree with it on matplotlib's real drawings and on random
ones, and finish in linear time on the drawings that make the plain way take hours.
"""

from __future__ import annotations

import base64
import io
import time
import warnings
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from autograder.errors import FigureUnreadable
from autograder.judge import svg_figure
from autograder.judge.svg_figure import read_svg_figure

SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg">'


def oracle_read_svg_figure(svg: str) -> tuple[int, list[str], list[bool]]:
    """What read_svg_figure must say, the plain way (quadratic in nested groups); a parse error → ValueError.
    A text inside a matplotlib.axis group (a tick label, an axis label) is no part of a title."""
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    parents = {child: parent for parent in root.iter() for child in parent}

    def in_axis_lines(element) -> bool:
        while element in parents:
            element = parents[element]
            if element.tag == f"{ns}g" and (element.get("id") or "").startswith("matplotlib.axis"):
                return True
        return False

    titles, axes_on = [], []
    for group in root.iter(f"{ns}g"):
        if not (group.get("id") or "").startswith("axes_"):
            continue
        if not any(True for _ in group.iter(f"{ns}image")):
            continue
        texts = ["".join(text.itertext()).strip() for text in group.iter(f"{ns}text") if not in_axis_lines(text)]
        titles.append(" ".join(t for t in texts if t))
        axes_on.append(any((g.get("id") or "").startswith("matplotlib.axis") for g in group.iter(f"{ns}g")))
    return len(titles), titles, axes_on


def draw(rows=4, cols=10, axes_off=True, digits=False, inset=False) -> tuple[str, list[str]]:
    """The figure as a student's plot_samples draws it, saved as probe.probe_samples_plot saves it."""
    import matplotlib
    import matplotlib.pyplot as plt

    from autograder.data.fashion_mnist import CLASS_NAMES

    rng = np.random.default_rng(rows * cols)
    images, labels = rng.random((rows * cols, 28, 28)), rng.integers(0, 10, rows * cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6, rows * 0.6))
    try:
        for ax, image, label in zip(np.ravel(axes), images, labels):
            ax.imshow(image, cmap="binary")
            ax.set_title(str(label) if digits else CLASS_NAMES[label], fontsize=6)
            if axes_off:
                ax.axis("off")
            if inset:  # matplotlib draws an inset axes inside its parent's group
                child = ax.inset_axes([0.6, 0.6, 0.4, 0.4])
                child.imshow(image[:5, :5])
                child.set_title("zoom", fontsize=4)
                child.axis("off")
        drawing = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.image_inline": True}):
            fig.savefig(drawing, format="svg")
        return drawing.getvalue(), [str(label) if digits else CLASS_NAMES[label] for label in labels]
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "options",
    [{}, {"rows": 3, "axes_off": False, "digits": True}, {"rows": 2, "cols": 3, "inset": True}],
    ids=["the-lesson-s-4x10", "3x10-axes-on-digit-titles", "inset-axes"],
)
def test_matplotlib_s_drawings_read_titles_without_tick_labels(options):
    svg, labels = draw(**options)
    count, titles, axes_on = read_svg_figure(svg)
    assert (count, titles, axes_on) == oracle_read_svg_figure(svg)
    if options.get("inset"):  # each parent group holds its inset's group: both count, as before
        assert count == 2 * len(labels) and titles == [title for label in labels for title in (f"{label} zoom", "zoom")]
    elif options.get("axes_off", True):
        assert (count, titles, axes_on) == (len(labels), labels, [False] * len(labels))
    else:  # the tick labels are not part of the titles
        assert (count, titles, axes_on) == (len(labels), labels, [True] * len(labels))


def test_the_check_fails_with_the_reader_s_message():
    from autograder.errors import CheckFailed

    with pytest.raises(CheckFailed, match="could not read the drawing"):
        svg_figure.read_svg_axes_checked("<svg")
    [axes] = svg_figure.read_svg_axes_checked(SVG_OPEN + '<g id="axes_1"><image/></g></svg>')
    assert (axes.title, axes.axes_on) == ("", False)


def nested_axes(depth: int, inner: str = "<image/>") -> str:
    return SVG_OPEN + '<g id="axes_1">' * depth + inner + "</g>" * depth + "</svg>"


@pytest.mark.parametrize("depth", [20_000, 200_000])
def test_thousands_of_nested_axes_groups_are_refused_at_once(depth):
    # the attack notebook draws_a_figure_of_nested_groups.ipynb draws 20,000: the old reader was still
    # at it after a minute (quadratic: hours); 200,000 is a drawing of 3.8 MB
    svg = nested_axes(depth)
    start = time.perf_counter()
    with pytest.raises(FigureUnreadable, match="too complex for the grader to read: .*nested more than 100 deep"):
        read_svg_figure(svg)
    assert time.perf_counter() - start < 2


def random_drawing(rng) -> str:
    """A random tree of the elements the reader looks at, with text and tails everywhere."""
    tags = ['g id="axes_1"', 'g id="axes_2"', 'g id="matplotlib.axis_1"', "g", "image", "text", "tspan", "path"]
    words = ["", " ", "Coat", " Bag ", "\n  ", "7", "&amp;"]
    out, open_tags = [SVG_OPEN], []
    for _ in range(int(rng.integers(1, 60))):
        if open_tags and rng.random() < 0.35:
            out.append(f"</{open_tags.pop()}>")
        else:
            tag = tags[int(rng.integers(len(tags)))]
            out.append(f"<{tag}>")
            open_tags.append(tag.split()[0])
        out.append(words[int(rng.integers(len(words)))])
    out.extend(f"</{tag}>" for tag in reversed(open_tags))
    return "".join(out) + "</svg>"


def test_random_drawings_read_as_the_oracle_reads_them():
    rng = np.random.default_rng(0)
    for _ in range(300):
        svg = random_drawing(rng)
        assert read_svg_figure(svg) == oracle_read_svg_figure(svg), svg


def test_deep_plain_groups_inside_one_axes_group_read_at_once():
    svg = SVG_OPEN + ('<g id="axes_1"><image/><text>Bag</text>' + "<g>" * 95 + "</g>" * 95 + "</g>") * 1000 + "</svg>"
    start = time.perf_counter()  # 97,000 elements, 0.7 MB
    count, titles, axes_on = read_svg_figure(svg)
    assert time.perf_counter() - start < 2
    assert (count, set(titles), set(axes_on)) == (1000, {"Bag"}, {False})


def best_of(runs, function, *args):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def test_nested_groups_take_the_plain_reader_far_longer_than_the_one_pass_reader():
    svg = nested_axes(1000)  # a small instance: the plain reader is quadratic in the depth, hours at 20,000
    old = best_of(1, oracle_read_svg_figure, svg)
    new = best_of(3, lambda s: pytest.raises(FigureUnreadable, read_svg_figure, s), svg)
    assert old > 10 * new, (old, new)
    # Within the bounds the answer is the plain reader's: 40 stacks of 90 nested axes groups with an image and a title.
    svg = SVG_OPEN + nested_axes(90, "<image/><text>Coat</text>")[len(SVG_OPEN) : -len("</svg>")] * 40 + "</svg>"
    count, titles, axes_on = read_svg_figure(svg)
    assert (count, titles, axes_on) == oracle_read_svg_figure(svg) and count == 3600 and set(titles) == {"Coat"}


def test_the_bounds_raise_the_typed_error():
    with pytest.raises(FigureUnreadable, match="nested more than 100 deep"):
        read_svg_figure(SVG_OPEN + "<g>" * 100 + "</g>" * 100 + "</svg>")
    read_svg_figure(SVG_OPEN + "<g>" * 98 + "</g>" * 98 + "</svg>")  # 99 open elements with the root
    with pytest.raises(FigureUnreadable, match="more than 200,000 drawing elements"):
        read_svg_figure(SVG_OPEN + "<g/>" * 200_000 + "</svg>")
    with pytest.raises(FigureUnreadable, match="texts hold more than"):
        read_svg_figure(SVG_OPEN + "<text>" + "x" * (svg_figure.MAX_TEXT_CHARS + 1) + "</text></svg>")
    with pytest.raises(FigureUnreadable, match="larger than"):
        read_svg_figure(SVG_OPEN + " " * svg_figure.MAX_SVG_CHARS + "</svg>")
    # Nested groups repeat their texts: 99 groups deep, each title holds every text inside it.
    texts = "<text>" + "y" * 60_000 + "</text>"
    with pytest.raises(FigureUnreadable, match="titles, put together"):
        read_svg_figure(nested_axes(90, "<image/>" + texts))
    for broken in ("", "<svg", "not xml", SVG_OPEN + "&undefined;</svg>", SVG_OPEN + "\ud800</svg>", None, b"<svg/>"):
        with pytest.raises(FigureUnreadable, match="could not read"):
            read_svg_figure(broken)


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE svg [
 <!ENTITY lol "lollollollollollollollollollol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 %s
]>
<svg xmlns="http://www.w3.org/2000/svg"><g id="axes_1"><image/><text>&%s;</text></g></svg>"""
BILLION_LAUGHS = LAUGHS % (
    "\n".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(5, 10)),
    "lol9",
)
A_FEW_LAUGHS = LAUGHS % ("", "lol4")  # 300,000 characters: under expat's own alarm, read by the plain reader


def test_entity_declarations_are_refused():
    for svg in (BILLION_LAUGHS, A_FEW_LAUGHS):
        with pytest.raises(FigureUnreadable, match="declares its own XML entities"):
            read_svg_figure(svg)
    assert len(oracle_read_svg_figure(A_FEW_LAUGHS)[1][0]) == 300_000  # the plain reader expands them
    matplotlib_s_doctype, _ = draw(rows=1, cols=1)
    assert "<!DOCTYPE svg PUBLIC" in matplotlib_s_doctype and read_svg_figure(matplotlib_s_doctype)[0] == 1


# --- what the images show ---------------------------------------------------------------------------------


def drawn(images, labels, *, order="rows", cmap="binary", titles=None, origin=None, colorbar=None) -> str:
    """A 4×10 figure of ``images`` as a student draws it: axes made row by row, or column by column
    (``add_subplot`` at the same places), saved as probe.probe_samples_plot saves it. ``colorbar``:
    "each" beside each image, "stubby" beside each with ``aspect=3``, "one" for the figure, "below" one
    horizontal for the figure; "overlay": ticks and a frame over each image, drawn by a transparent inset
    axes whose only image is a gradient strip."""
    import matplotlib
    import matplotlib.pyplot as plt

    from autograder.data.fashion_mnist import CLASS_NAMES

    fig = plt.figure(figsize=(12, 4.8))
    try:
        places = [(row, col) for row in range(4) for col in range(10)]
        if order == "columns":
            places.sort(key=lambda place: (place[1], place[0]))
        for row, col in places:
            index = 10 * row + col
            ax = fig.add_subplot(4, 10, index + 1)
            shown = ax.imshow(images[index], cmap=cmap, origin=origin)
            ax.set_title((titles or [CLASS_NAMES[label] for label in labels])[index])
            ax.axis("off")
            if colorbar == "each":
                fig.colorbar(shown, ax=ax)
            elif colorbar == "stubby":
                fig.colorbar(shown, ax=ax, aspect=3)
            elif colorbar == "overlay":
                over = ax.inset_axes([0, 0, 1, 1])
                over.set_facecolor("none")
                over.imshow(np.linspace(0, 1, 30)[None, :], extent=(0, 1, 0, 0.02), aspect="auto", cmap="gray")
                over.set_xlim(0, 1)
                over.set_ylim(0, 1)
        if colorbar in ("one", "below"):
            fig.colorbar(shown, ax=fig.axes, orientation="horizontal" if colorbar == "below" else "vertical")
        drawing = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.image_inline": True}):
            fig.savefig(drawing, format="svg")
        return drawing.getvalue()
    finally:
        plt.close(fig)


def check_of(svg: str, dataset):
    import types

    from autograder.judge.data_checks import check_samples_plot
    from autograder.judge.evidence import Evidence
    from autograder.sandbox.artifacts import Artifacts

    (images, labels), _ = dataset
    data = types.SimpleNamespace(train_images=images, train_labels=labels)
    return check_samples_plot(Evidence(Artifacts(values={"plot_svg": svg}), data))


@pytest.mark.parametrize("order,cmap,origin", [("rows", "binary", None), ("columns", "binary", None),
                                               ("rows", "jet", None), ("rows", "hsv", None), ("rows", "flag", None),
                                               ("columns", None, None), ("rows", "binary", "lower")])
def test_the_lesson_s_figure_passes_in_any_order_of_making_its_axes_and_any_colormap(dataset, order, cmap, origin):
    (images, labels), _ = dataset
    svg = drawn(images[:40] / 255, labels[:40], order=order, cmap=cmap, origin=origin)
    assert "40 images" in check_of(svg, dataset)


@pytest.mark.parametrize("colorbar", ["each", "stubby", "one", "below"])
def test_a_figure_with_colorbars_passes(dataset, colorbar):
    """A colorbar is an axes with an image too (its gradient), untitled: drawn beside the samples, it is
    none of them."""
    (images, labels), _ = dataset
    assert "40 images" in check_of(drawn(images[:40] / 255, labels[:40], colorbar=colorbar), dataset)


def test_ticks_laid_over_each_image_by_an_inset_with_a_strip_of_its_own_fail(dataset):
    """An inset axes's ticks are its parent's: one whose only image is a gradient strip (so that it passes
    for a colorbar) draws its frame and ticks over the sample all the same."""
    from autograder.errors import CheckFailed

    (images, labels), _ = dataset
    with pytest.raises(CheckFailed, match="the axes are on"):
        check_of(drawn(images[:40] / 255, labels[:40], colorbar="overlay"), dataset)


def test_one_image_shown_forty_times_under_the_right_titles_fails(dataset):
    from autograder.errors import CheckFailed

    (images, labels), _ = dataset
    with pytest.raises(CheckFailed, match="image 2 shows sample 1, not sample 2"):
        check_of(drawn([images[0] / 255] * 40, labels[:40]), dataset)


def test_blank_images_under_the_right_titles_fail(dataset):
    from autograder.errors import CheckFailed

    (_, labels), _ = dataset
    with pytest.raises(CheckFailed, match="40 images are blank"):
        check_of(drawn(np.zeros((40, 28, 28)), labels[:40]), dataset)


def test_the_samples_in_another_order_under_their_own_titles_fail(dataset):
    from autograder.data.fashion_mnist import CLASS_NAMES
    from autograder.errors import CheckFailed

    (images, labels), _ = dataset
    order = list(range(39, -1, -1))
    svg = drawn(images[order] / 255, labels[order], titles=[CLASS_NAMES[labels[i]] for i in order])
    with pytest.raises(CheckFailed, match="shows sample 40, not sample 1"):
        check_of(svg, dataset)


@pytest.mark.parametrize("href", [
    "data:image/png;base64," + "A" * svg_figure.MAX_IMAGE_CHARS,  # too long to be kept
    "data:image/png;base64,not base64!",
    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xff\xff\xff\0\0\0\0").decode(),
    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10garbage").decode(),
    "https://example.com/sample.png",
], ids=["too-long", "not-base64", "declares-4-billion-pixels", "truncated", "not-inline"])
def test_an_image_the_grader_cannot_decode_is_named_by_its_place(href):
    from autograder.judge.data_checks import image_problems
    from autograder.judge.svg_figure import shown_images

    svg = (SVG_OPEN.replace("<svg ", '<svg xmlns:xlink="http://www.w3.org/1999/xlink" ')
           + f'<g id="axes_1"><image xlink:href="{href}" x="0" y="0" width="10" height="10"/></g></svg>')
    shown = shown_images(svg_figure.read_svg_axes(svg))
    assert shown == [None]
    assert image_problems(shown, np.zeros((60, 28, 28))) == ["the grader could not read image 1 of the drawing"]


@pytest.mark.parametrize("forged", ["noise", "transposed", "shifted_2px", "other_samples", "payload_in_the_background"])
def test_images_that_are_not_their_samples_under_the_right_titles_fail(dataset, forged):
    from autograder.errors import CheckFailed

    (images, labels), _ = dataset
    samples = images[:40] / 255
    shown = {
        "noise": np.random.default_rng(0).random((40, 28, 28)),
        "transposed": samples.transpose(0, 2, 1),  # images[i].T
        "shifted_2px": np.roll(samples, 2, axis=2),
        "other_samples": images[5000:5040] / 255,  # X_train[5000 + i]: the training part, not the samples given
        "payload_in_the_background": np.where(samples == 0, np.random.default_rng(1).random((40, 28, 28)), samples),
    }[forged]
    with pytest.raises(CheckFailed, match="not sample|do not show"):
        check_of(drawn(shown, labels[:40]), dataset)


def test_a_png_that_declares_its_size_twice_is_not_decoded_at_the_second():
    import struct
    import zlib

    from autograder.judge.svg_figure import ShownImage, decoded

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    side = 13000  # 169 million pixels: 1-2 s and hundreds of MiB to decode
    rows = zlib.compress(b"\0" * (side + 1) * side, 9)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
           + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)) + chunk(b"IDAT", rows)
           + chunk(b"IEND", b""))
    started = time.perf_counter()
    with warnings.catch_warnings():  # as a grader runs: Pillow's size warning is no error there
        warnings.simplefilter("ignore")
        assert decoded(ShownImage(0, 0, False, "data:image/png;base64," + base64.b64encode(png).decode())) is None
    assert time.perf_counter() - started < 0.5
    # Within the bounds too, a second header is refused: the first is what the colorbar rule reads.
    side = 2048
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 100, 8, 0, 0, 0, 0))
           + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * (side + 1) * side, 9)) + chunk(b"IEND", b""))
    assert decoded(ShownImage(0, 0, False, "data:image/png;base64," + base64.b64encode(png).decode())) is None


def test_colorbars_are_looked_for_only_in_a_figure_of_a_grid_s_size_and_among_strips(monkeypatch):
    """Telling a colorbar from a sample decodes its image: a drawing of thousands of untitled images is
    not decoded image by image (it fails its count as it is), nor is an image that is no strip."""
    import io

    from PIL import Image

    def png(width, height):
        out = io.BytesIO()
        Image.new("L", (width, height)).save(out, format="PNG")
        return svg_figure.PNG_DATA + base64.b64encode(out.getvalue()).decode()

    decoded = []
    monkeypatch.setattr(svg_figure, "decoded", lambda image: decoded.append(image))
    square, strip, wide = (svg_figure.ShownAxes("", True, svg_figure.ShownImage(0.0, 0.0, False, png(*size)))
                           for size in ((2048, 2048), (4, 80), (2048, 1024)))
    assert svg_figure.without_colorbars([square] * 5000) == [square] * 5000
    assert svg_figure.without_colorbars([strip] * 81) == [strip] * 81
    assert svg_figure.without_colorbars([wide] * 80) == [wide] * 80  # no strip matplotlib draws is that thick
    assert decoded == []
    assert svg_figure.without_colorbars([square] * 40 + [strip] * 40) == [square] * 40 + [strip] * 40
    assert len(decoded) == 40  # the strips only: none decodes, so none is a colorbar
