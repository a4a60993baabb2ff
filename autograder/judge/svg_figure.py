"""Read matplotlib's SVG drawing of the samples figure: in one pass, with hard bounds.

The drawing comes from the sandbox's child, so it is hostile input: it may be huge, nested
thousands deep, or declare XML entities that expand without end. ``read_svg_figure`` streams it
through the XML parser once, keeping a stack of the open elements, so its time is linear in the
drawing's size; it stops with ``FigureUnreadable`` (a message for the student) as soon as a bound
is passed, and it never expands an entity declared by the drawing.

What it reports (``read_svg_axes``): for each ``<g id="axes_N">`` group that contains an ``<image>``
(anywhere inside it), in document order, its title — every ``<text>`` inside the group but outside its axis lines,
each one's text stripped, the non-empty ones joined by a space — and whether a
``<g id="matplotlib.axis...">`` lies inside it. matplotlib draws an axes' title as a text of the
axes' own group and its tick labels and axis labels inside the ``matplotlib.axis_N`` groups, so
the tick labels of axes left on never read as part of a title. Groups nested in groups
(matplotlib draws an inset axes inside its parent's group) count whole: an outer group's images,
texts and axis lines include those of the groups inside it. Each such group's first image comes with
its place on the page and its PNG data (matplotlib inlines each image as a PNG, drawn upside down):
``in_reading_order`` puts the groups in the order a reader sees them, row by row, whatever order the
student's code made them in, and ``shown_images`` decodes each image, bounded, to 28×28 gray levels
for the check to say which sample it shows.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from autograder.errors import CheckFailed, FigureUnreadable

MAX_SVG_CHARS = 16 * 1024**2  # matplotlib's drawing of the lesson's 4×10 figure is about 0.7 million
MAX_ELEMENTS = 200_000  # the 4×10 figure has about 500 elements with its axes off, 3,000 with them on
MAX_DEPTH = 100  # matplotlib nests about 8 deep
MAX_TEXT_CHARS = 1024**2  # characters inside <text> elements: the titles are a few hundred
MAX_TITLE_CHARS = 4 * 1024**2  # characters of titles put together (nested groups repeat their texts)
MAX_IMAGE_CHARS = 1024**2  # one image's inline PNG, base64: the lesson's are about 10,000 characters
MAX_IMAGE_SIDE = 2048  # pixels: matplotlib draws each of the lesson's images about 100 pixels wide
# Colorbars are looked for in a figure of at most this many axes with images (40 images, a colorbar each):
# each is decoded to be told from a sample, and a figure of more fails its count whatever they are.
MAX_AXES_WITH_COLORBARS = 80
# And only among strips: one side at least twice the other, the short side at most this many pixels
# (matplotlib draws a colorbar's gradient a few pixels wide: 4 at 100 dpi, about 40 at 300 dpi).
MAX_COLORBAR_WIDTH = 256
FEED_CHARS = 256 * 1024  # the parser gets the drawing in pieces, so that a bound stops it early

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
PNG_DATA = "data:image/png;base64,"
_G, _IMAGE, _TEXT = f"{SVG}g", f"{SVG}image", f"{SVG}text"
_OTHER, _TEXT_KIND, _AXES_KIND, _AXIS_KIND = 0, 1, 2, 3
# Markup declarations (only possible inside a DOCTYPE's internal subset). matplotlib writes a
# DOCTYPE line naming the SVG 1.1 DTD and nothing else; an entity could expand without end.
_DECLARATION = re.compile(r"<!\s*(ENTITY|ATTLIST|ELEMENT|NOTATION)")

UNREADABLE = "the grader could not read the drawing of your figure"
TOO_COMPLEX = "the figure is too complex for the grader to read"


@dataclass
class ShownImage:
    """An ``<image>`` as matplotlib draws it: its top left corner on the page, whether it is drawn upside
    down (``scale(1 -1)``), and its inline PNG (None: not one, or larger than ``MAX_IMAGE_CHARS``)."""

    left: float | None
    top: float | None
    flipped: bool
    png: str | None

    @classmethod
    def of(cls, attrib) -> "ShownImage":
        def number(name):
            try:
                value = float(attrib.get(name, ""))
            except ValueError:
                return None
            return value if value == value and abs(value) < 1e9 else None

        flipped = "scale(1 -1)" in (attrib.get("transform") or "")
        y = number("y")
        href = attrib.get(XLINK_HREF) or ""
        png = href if href.startswith(PNG_DATA) and len(href) <= MAX_IMAGE_CHARS else None
        return cls(number("x"), None if y is None else (-y if flipped else y), flipped, png)


@dataclass
class ShownAxes:
    title: str
    axes_on: bool
    image: ShownImage | None


class _Reader:
    """The XML parser's target: one call per start tag, end tag and piece of text."""

    def __init__(self) -> None:
        self.kinds: list[int] = []  # the open elements, innermost last
        self.elements = 0
        self.text_depth = 0  # how many <text> elements of titles are open
        self.axis_depth = 0  # how many <g id="matplotlib.axis..."> groups are open: their texts are tick labels
        self.chunks: list[str] = []  # character data inside <text> elements, in document order
        self.text_chars = 0
        self.texts: list[list[int]] = []  # per <text>, in document order: [start, end] offsets into the chunks
        self.open_texts: list[int] = []
        # per <g id="axes_...">, in document order: [first text, end of texts, has image, has axis, first image]
        self.axes: list[list] = []
        self.open_axes: list[int] = []

    def start(self, tag, attrib) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise FigureUnreadable(
                f"{TOO_COMPLEX}: it has more than {MAX_ELEMENTS:,} drawing elements "
                "(a 4×10 grid of images with titles has a few hundred)"
            )
        if len(self.kinds) >= MAX_DEPTH:
            raise FigureUnreadable(f"{TOO_COMPLEX}: its elements are nested more than {MAX_DEPTH} deep")
        kind = _OTHER
        if tag == _G:
            ident = attrib.get("id") or ""
            if ident.startswith("axes_"):
                kind = _AXES_KIND
                self.open_axes.append(len(self.axes))
                self.axes.append([len(self.texts), None, False, False, None])
            elif ident.startswith("matplotlib.axis"):
                kind = _AXIS_KIND
                self.axis_depth += 1
                if self.open_axes:
                    self.axes[self.open_axes[-1]][3] = True
        elif tag == _IMAGE:
            if self.open_axes:
                group = self.axes[self.open_axes[-1]]
                group[2] = True
                if group[4] is None:
                    group[4] = ShownImage.of(attrib)
        elif tag == _TEXT and not self.axis_depth:
            kind = _TEXT_KIND
            self.text_depth += 1
            self.open_texts.append(len(self.texts))
            self.texts.append([self.text_chars, None])
        self.kinds.append(kind)

    def end(self, tag) -> None:
        kind = self.kinds.pop()
        if kind == _TEXT_KIND:
            self.text_depth -= 1
            self.texts[self.open_texts.pop()][1] = self.text_chars
        elif kind == _AXIS_KIND:
            self.axis_depth -= 1
        elif kind == _AXES_KIND:
            group = self.axes[self.open_axes.pop()]
            group[1] = len(self.texts)
            if self.open_axes:  # what lies inside an inner group lies inside the outer one too
                outer = self.axes[self.open_axes[-1]]
                outer[2] = outer[2] or group[2]
                outer[3] = outer[3] or group[3]  # an inset's ticks are drawn over its parent
                outer[4] = outer[4] or group[4]

    def data(self, text: str) -> None:
        if self.text_depth:
            self.text_chars += len(text)
            if self.text_chars > MAX_TEXT_CHARS:
                raise FigureUnreadable(f"{TOO_COMPLEX}: its texts hold more than {MAX_TEXT_CHARS:,} characters")
            self.chunks.append(text)

    def close(self) -> list[ShownAxes]:
        text = "".join(self.chunks)
        lengths = [0]  # lengths[i]: the characters of the first i texts, plus i
        for start, end in self.texts:
            lengths.append(lengths[-1] + (end - start) + 1)
        cost = sum(lengths[last] - lengths[first] for first, last, has_image, *_ in self.axes if has_image)
        if cost > MAX_TITLE_CHARS:
            raise FigureUnreadable(
                f"{TOO_COMPLEX}: its titles, put together, hold more than {MAX_TITLE_CHARS:,} characters"
            )
        shown = []
        for first, last, has_image, has_axis, image in self.axes:
            if not has_image:
                continue
            parts = (text[start:end].strip() for start, end in self.texts[first:last])
            shown.append(ShownAxes(" ".join(part for part in parts if part), has_axis, image))
        return shown


def read_svg_figure(svg: str) -> tuple[int, list[str], list[bool]]:
    """From matplotlib's SVG drawing of a figure: the axes that show an image, their titles, and
    whether each draws its axis lines and ticks, in document order. Raises ``FigureUnreadable``."""
    axes = read_svg_axes(svg)
    return len(axes), [a.title for a in axes], [a.axes_on for a in axes]


def read_svg_axes(svg: str) -> list[ShownAxes]:
    """Each axes of matplotlib's SVG drawing that shows an image, in document order. Raises
    ``FigureUnreadable`` (a ``ValueError``)."""
    if not isinstance(svg, str):
        raise FigureUnreadable(UNREADABLE)
    if len(svg) > MAX_SVG_CHARS:
        raise FigureUnreadable(f"{TOO_COMPLEX}: its drawing is larger than {MAX_SVG_CHARS:,} characters")
    if _DECLARATION.search(svg):
        raise FigureUnreadable(f"{UNREADABLE}: it declares its own XML entities or elements")
    reader = _Reader()
    parser = ElementTree.XMLParser(target=reader)
    try:
        for offset in range(0, len(svg), FEED_CHARS):
            parser.feed(svg[offset : offset + FEED_CHARS])
        return parser.close()
    except (ElementTree.ParseError, UnicodeError):
        raise FigureUnreadable(UNREADABLE) from None
    except RecursionError:  # not expected of expat, which keeps its own stack; still the same answer
        raise FigureUnreadable(f"{TOO_COMPLEX}: its elements are nested too deeply") from None


def read_svg_axes_checked(svg: str) -> list[ShownAxes]:
    """``read_svg_axes`` for the check, in reading order, colorbars left out: a drawing it cannot read
    fails the check with its message."""
    try:
        return in_reading_order(without_colorbars(read_svg_axes(svg)))
    except FigureUnreadable as error:
        raise CheckFailed(str(error)) from None


def in_reading_order(axes: list[ShownAxes]) -> list[ShownAxes]:
    """The axes row by row, top to bottom, each row left to right, by where their images lie on the page
    (a figure's axes made column by column, or in any order, read as the figure shows them); in
    document order where an image's place cannot be read."""
    if any(a.image is None or a.image.left is None or a.image.top is None for a in axes):
        return list(axes)
    return sorted(axes, key=lambda a: (round(a.image.top, 1), round(a.image.left, 1)))


def without_colorbars(axes: list[ShownAxes]) -> list[ShownAxes]:
    """The axes but the colorbars (``fig.colorbar``): untitled, their image a strip (``MAX_COLORBAR_WIDTH``)
    whose gray level changes along its length only. A figure may draw one beside its samples; it is none
    of them. An inset colorbar (``cax=ax.inset_axes(...)``) is not told apart: its ticks are drawn over
    its parent's place, as those of an inset laid over a sample to draw its frame would be."""
    import numpy as np

    if len(axes) > MAX_AXES_WITH_COLORBARS:
        return axes

    def colorbar(a: ShownAxes) -> bool:
        size = None if a.title or a.image is None else png_size(a.image)
        if size is None or max(size) < 2 * min(size) or min(size) > MAX_COLORBAR_WIDTH:
            return False
        gray = decoded(a.image)
        if gray is None or np.ptp(gray) == 0:
            return False
        along = min(np.ptp(gray, axis=0).max(), np.ptp(gray, axis=1).max())  # the least change across a line
        return bool(along <= 0.02 * np.ptp(gray))

    return [a for a in axes if not colorbar(a)]


def shown_images(axes: list[ShownAxes]):
    """Each axes' image as 28×28 gray levels, upright (a NumPy array), or None where it cannot be read."""
    return [None if a.image is None else decoded(a.image) for a in axes]


def png_size(image: ShownImage) -> tuple[int, int] | None:
    """The width and height an inline PNG's first header declares, if at most ``MAX_IMAGE_SIDE`` each;
    read from its first characters (matplotlib breaks its lines), nothing decoded."""
    import base64
    import binascii
    import struct

    if image.png is None:
        return None
    try:
        data = base64.b64decode("".join(image.png[len(PNG_DATA):len(PNG_DATA) + 256].split())[:32])
    except (binascii.Error, ValueError):
        return None
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if 0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE else None


def decoded(image: ShownImage):
    import base64
    import binascii
    import io

    import numpy as np
    from PIL import Image

    declared = png_size(image)  # checked before the decoder sizes anything
    if declared is None:
        return None
    try:
        data = base64.b64decode(image.png[len(PNG_DATA):])
    except (binascii.Error, ValueError):
        return None
    try:
        with Image.open(io.BytesIO(data)) as picture:
            # The size the decoder will use, before it decodes: a second IHDR chunk overrides the first,
            # which the bounds and the colorbar rule read.
            if picture.size != declared:
                return None
            gray = picture.convert("L").resize((28, 28), Image.Resampling.BOX)
            levels = np.asarray(gray, dtype=np.float64)
    except Exception:  # whatever the decoder refuses is an image the grader cannot read
        return None
    return np.flipud(levels) if image.flipped else levels
