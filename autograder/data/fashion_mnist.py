"""Fashion-MNIST, loaded from the original IDX files and verified.

``load_fashion_mnist()`` returns exactly what ``keras.datasets.fashion_mnist.load_data()`` returns,
but it looks for a local copy first and never trusts one blindly: it parses the IDX format
itself and checks the decompressed bytes against pinned SHA-256 digests. The ``.gz`` bytes
differ between mirrors (gzip headers carry names and times); the decompressed content does not.

Where it looks, in order (the first place that holds any of the four files is used, and a
bad file there is an error, never a silent fall-through to the next place):

1. the ``directory`` argument;
2. ``$FASHION_MNIST_DIR``;
3. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package ``dataset-fashion-mnist``);
4. Keras's cache, ``~/.keras/datasets/fashion-mnist`` (``$KERAS_HOME/datasets/...`` if set);
5. Keras's own download, which fills that cache.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from autograder.errors import CorruptDataError, DataError, DataNotFoundError

ENV_VAR = "FASHION_MNIST_DIR"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class IdxFile:
    name: str
    magic: int
    count: int
    sha256: str  # of the decompressed content

    @property
    def is_images(self) -> bool:
        return self.magic == IMAGE_MAGIC

    @property
    def header_size(self) -> int:
        return 16 if self.is_images else 8

    @property
    def size(self) -> int:
        per_item = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] if self.is_images else 1
        return self.header_size + self.count * per_item


TRAIN_IMAGES = IdxFile(
    "train-images-idx3-ubyte.gz",
    IMAGE_MAGIC,
    60000,
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
)
TRAIN_LABELS = IdxFile(
    "train-labels-idx1-ubyte.gz",
    LABEL_MAGIC,
    60000,
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
)
TEST_IMAGES = IdxFile(
    "t10k-images-idx3-ubyte.gz",
    IMAGE_MAGIC,
    10000,
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
)
TEST_LABELS = IdxFile(
    "t10k-labels-idx1-ubyte.gz",
    LABEL_MAGIC,
    10000,
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
)
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def keras_cache_dir() -> Path:
    """Where ``keras.datasets.fashion_mnist.load_data()`` keeps its download."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home) / "datasets" / "fashion-mnist"


def candidate_dirs(directory: str | Path | None = None) -> list[tuple[str, Path]]:
    """The places searched, in order, each with how it was chosen (for error messages)."""
    places = []
    if directory is not None:
        places.append(("the directory argument", Path(directory)))
    if os.environ.get(ENV_VAR):
        places.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    places.append((f"the Debian package {DEBIAN_PACKAGE}", SYSTEM_DIR))
    places.append(("the Keras cache", keras_cache_dir()))
    return places


def find_data_dir(directory: str | Path | None = None) -> Path | None:
    """The first place that holds Fashion-MNIST, or None when there is none.

    A place named on purpose (the argument or the environment variable) must exist: a typo
    there is reported, not skipped over in favour of another copy.
    """
    for how, path in candidate_dirs(directory):
        explicit = how.startswith("the directory") or how.startswith("$")
        if explicit and not path.is_dir():
            raise DataNotFoundError(f"{path} (from {how}) is not a directory")
        if explicit or any((path / f.name).exists() for f in FILES):
            return path
    return None


def load_fashion_mnist(
    directory: str | Path | None = None,
    *,
    download: Callable[[], Path] | None | bool = True,
) -> Dataset:
    """Return ``(train_images, train_labels), (test_images, test_labels)`` as uint8 arrays.

    Shapes are (60000, 28, 28), (60000,), (10000, 28, 28), (10000,), as Keras gives them.
    ``download`` is called only when no local copy exists; pass ``False`` to forbid it.
    """
    found = find_data_dir(directory)
    if found is None:
        found = _download(download)
    train_images, train_labels, test_images, test_labels = (read_idx(found / f.name, f) for f in FILES)
    return (train_images, train_labels), (test_images, test_labels)


def read_idx(path: Path, spec: IdxFile) -> np.ndarray:
    """Parse and verify one gzipped IDX file; every problem is a CorruptDataError naming it."""
    if not path.exists():
        raise DataNotFoundError(
            f"{path} is missing: the folder {path.parent} must hold all four Fashion-MNIST files "
            f"({', '.join(f.name for f in FILES)})"
        )
    try:
        with gzip.open(path, "rb") as stream:
            content = stream.read()
    except EOFError:
        raise CorruptDataError(path, "the gzip stream ends early (the file is truncated)") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as error:
        raise CorruptDataError(path, f"not a valid gzip file ({error})") from None

    if len(content) < spec.header_size:
        raise CorruptDataError(path, f"only {len(content)} bytes, shorter than the IDX header")
    magic = int.from_bytes(content[0:4], "big")
    if magic != spec.magic:
        kind = "images (0x00000803)" if spec.is_images else "labels (0x00000801)"
        raise CorruptDataError(path, f"wrong magic number 0x{magic:08x}, expected IDX {kind}")
    count = int.from_bytes(content[4:8], "big")
    if count != spec.count:
        raise CorruptDataError(path, f"the header counts {count} items, expected {spec.count}")
    if spec.is_images:
        rows, cols = int.from_bytes(content[8:12], "big"), int.from_bytes(content[12:16], "big")
        if (rows, cols) != IMAGE_SHAPE:
            raise CorruptDataError(path, f"images are {rows}x{cols}, expected 28x28")
    if len(content) != spec.size:
        raise CorruptDataError(
            path,
            f"{len(content)} bytes after decompression, expected {spec.size} "
            f"({spec.count} items: the data is {'truncated' if len(content) < spec.size else 'too long'})",
        )

    # A writable copy, as Keras returns: students may modify their arrays in place.
    array = np.frombuffer(content, dtype=np.uint8, offset=spec.header_size).copy()
    if spec.is_images:
        array = array.reshape(spec.count, *IMAGE_SHAPE)
    elif array.max() > 9:
        bad = np.flatnonzero(array > 9)
        raise CorruptDataError(
            path, f"{bad.size} labels are outside 0-9 (the first, at index {bad[0]}, is {array[bad[0]]})"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != spec.sha256:
        raise CorruptDataError(
            path, f"SHA-256 of the decompressed content is {digest}, expected {spec.sha256}: the data was altered"
        )
    return array


def _download(download: Callable[[], Path] | None | bool) -> Path:
    how_to = (
        "Fashion-MNIST was not found. Get it in one of these ways:\n"
        f"  - install the Debian/Ubuntu package: sudo apt-get install {DEBIAN_PACKAGE} "
        f"(files land in {SYSTEM_DIR});\n"
        f"  - point ${ENV_VAR} at a folder holding {', '.join(f.name for f in FILES)};\n"
        "  - or go online once: Keras downloads it into " + str(keras_cache_dir()) + "."
    )
    if download is False or download is None:
        raise DataNotFoundError(how_to)
    fetch = _keras_download if download is True else download
    try:
        return Path(fetch())
    except DataError:
        raise
    except Exception as error:  # any network or HTTP failure: the reader needs the ways out, not a traceback
        raise DataNotFoundError(f"{how_to}\nThe download failed: {type(error).__name__}: {error}") from None


def _keras_download() -> Path:
    from keras.utils import get_file  # TensorFlow is imported only when a download is really needed

    origin = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
    paths = [Path(get_file(f.name, origin=origin + f.name, cache_subdir="datasets/fashion-mnist")) for f in FILES]
    return paths[0].parent
