"""The Fashion-MNIST loader: the real files, every kind of damaged copy, and where it looks."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from autograder.data import fashion_mnist as data
from autograder.data.fashion_mnist import FILES, TEST_IMAGES, TEST_LABELS, TRAIN_LABELS, load_fashion_mnist
from autograder.errors import CorruptDataError, DataNotFoundError


def test_real_files_have_the_shapes_dtypes_and_class_balance_of_fashion_mnist(dataset):
    (train_images, train_labels), (test_images, test_labels) = dataset
    assert train_images.shape == (60000, 28, 28) and train_labels.shape == (60000,)
    assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)
    for array in (train_images, train_labels, test_images, test_labels):
        assert array.dtype == np.uint8
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert train_images.min() == 0 and train_images.max() == 255


def test_the_arrays_equal_what_keras_load_data_returns(real_data_dir, tmp_path, monkeypatch):
    # Keras finds its cache already filled and reads it without touching the network.
    cache = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for spec in FILES:
        shutil.copy(real_data_dir / spec.name, cache / spec.name)
    import keras

    # Keras reads $KERAS_HOME once, when it is first imported (maybe by an earlier test).
    monkeypatch.setattr("keras.src.backend.config.keras_home", lambda: str(tmp_path / "keras_home"))
    theirs = keras.datasets.fashion_mnist.load_data()
    ours = load_fashion_mnist(real_data_dir)
    for mine, keras_array in zip((*ours[0], *ours[1]), (*theirs[0], *theirs[1])):
        assert mine.dtype == keras_array.dtype and mine.shape == keras_array.shape
        assert np.array_equal(mine, keras_array)


# --- damaged copies, each made in a temporary folder -------------------------------------------


@pytest.fixture
def copy_dir(real_data_dir, tmp_path):
    """A folder holding a good copy of the four files, for one test to damage."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for spec in FILES:
        shutil.copy(real_data_dir / spec.name, folder / spec.name)
    return folder


def rewrite(path: Path, change) -> None:
    """Decompress a file, let `change` edit its bytes, and compress it again."""
    content = bytearray(gzip.decompress(path.read_bytes()))
    content = change(content)
    path.write_bytes(gzip.compress(bytes(content), compresslevel=1))


def load_error(folder: Path, expected=CorruptDataError):
    with pytest.raises(expected) as raised:
        load_fashion_mnist(folder)
    return raised.value, str(raised.value)


def test_truncated_gzip_is_reported_with_the_file_name(copy_dir):
    path = copy_dir / TEST_IMAGES.name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    error, message = load_error(copy_dir)
    assert error.path == path
    assert str(path) in message and "truncated" in message


def test_a_file_that_is_not_gzip_is_reported(copy_dir):
    path = copy_dir / TRAIN_LABELS.name
    path.write_bytes(b"<html>404 Not Found</html>")
    _, message = load_error(copy_dir)
    assert str(path) in message and "not a valid gzip file" in message


def test_wrong_magic_number_is_reported(copy_dir):
    path = copy_dir / TEST_LABELS.name

    def labels_claim_to_be_images(content):
        content[3] = 0x03
        return content

    rewrite(path, labels_claim_to_be_images)
    _, message = load_error(copy_dir)
    assert str(path) in message and "wrong magic number 0x00000803" in message


def test_wrong_item_count_in_the_header_is_reported(copy_dir):
    path = copy_dir / TEST_IMAGES.name

    def count_9999(content):
        content[4:8] = (9999).to_bytes(4, "big")
        return content

    rewrite(path, count_9999)
    _, message = load_error(copy_dir)
    assert str(path) in message and "counts 9999 items, expected 10000" in message


def test_content_shorter_than_its_header_says_is_reported(copy_dir):
    path = copy_dir / TEST_IMAGES.name
    rewrite(path, lambda content: content[:-784])
    _, message = load_error(copy_dir)
    assert str(path) in message and "truncated" in message and "7839232 bytes" in message


def test_labels_outside_0_to_9_are_reported(copy_dir):
    path = copy_dir / TEST_LABELS.name

    def label_ten(content):
        content[8 + 17] = 10
        return content

    rewrite(path, label_ten)
    _, message = load_error(copy_dir)
    assert str(path) in message and "outside 0-9" in message and "index 17" in message


def test_altered_pixels_fail_the_pinned_digest(copy_dir):
    path = copy_dir / TEST_IMAGES.name

    def flip_one_pixel(content):
        content[16 + 400] ^= 0xFF
        return content

    rewrite(path, flip_one_pixel)
    _, message = load_error(copy_dir)
    assert str(path) in message and "SHA-256" in message and TEST_IMAGES.sha256 in message


def test_a_recompressed_copy_with_other_gzip_bytes_still_loads(copy_dir):
    # Mirrors ship different .gz bytes for the same content; only the content is pinned.
    rewrite(copy_dir / TEST_LABELS.name, lambda content: content)
    (_, _), (_, test_labels) = load_fashion_mnist(copy_dir)
    assert test_labels.shape == (10000,)


def test_a_missing_file_is_named(copy_dir):
    (copy_dir / TRAIN_LABELS.name).unlink()
    _, message = load_error(copy_dir, DataNotFoundError)
    assert TRAIN_LABELS.name in message and "is missing" in message


def test_an_empty_file_is_reported(copy_dir):
    path = copy_dir / TEST_LABELS.name
    path.write_bytes(gzip.compress(b""))
    _, message = load_error(copy_dir)
    assert str(path) in message and "shorter than the IDX header" in message


# --- where the loader looks --------------------------------------------------------------------


@pytest.fixture
def places(real_data_dir, tmp_path, monkeypatch):
    """Three good copies (argument, environment, system) and an empty Keras home."""
    folders = {}
    for name in ("argument", "environment", "system"):
        folder = tmp_path / name
        folder.mkdir()
        for spec in FILES:
            (folder / spec.name).symlink_to(real_data_dir / spec.name)
        folders[name] = folder
    monkeypatch.setenv(data.ENV_VAR, str(folders["environment"]))
    monkeypatch.setattr(data, "SYSTEM_DIR", folders["system"])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return folders


def break_folder(folder: Path) -> None:
    """Make a folder's copy unloadable, so that loading proves it was not the one used."""
    target = folder / TEST_LABELS.name
    target.unlink()
    target.write_bytes(b"not gzip")


def test_the_directory_argument_beats_the_environment_which_beats_the_system_path(places, monkeypatch):
    assert data.find_data_dir(places["argument"]) == places["argument"]
    assert data.find_data_dir() == places["environment"]
    monkeypatch.delenv(data.ENV_VAR)
    assert data.find_data_dir() == places["system"]

    # The winner is really what gets loaded: the losers are broken and never read.
    monkeypatch.setenv(data.ENV_VAR, str(places["environment"]))
    break_folder(places["environment"])
    break_folder(places["system"])
    load_fashion_mnist(places["argument"], download=False)
    with pytest.raises(CorruptDataError, match="environment"):
        load_fashion_mnist(download=False)


def test_the_keras_cache_is_used_after_the_system_path(places, monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV_VAR)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "nowhere")
    cache = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    cache.parent.mkdir(parents=True)
    shutil.copytree(places["system"], cache, symlinks=True)
    assert data.find_data_dir() == cache
    load_fashion_mnist(download=False)


def test_a_directory_named_on_purpose_must_exist(places, tmp_path, monkeypatch):
    with pytest.raises(DataNotFoundError, match="directory argument"):
        load_fashion_mnist(tmp_path / "typo")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(DataNotFoundError, match="FASHION_MNIST_DIR"):
        load_fashion_mnist()


@pytest.fixture
def nothing_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "no-system-copy")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))


def assert_says_how_to_get_the_data(message: str):
    assert "apt-get install dataset-fashion-mnist" in message
    assert "FASHION_MNIST_DIR" in message
    assert "go online" in message


def test_offline_with_no_data_says_how_to_get_it(nothing_anywhere):
    with pytest.raises(DataNotFoundError) as raised:
        load_fashion_mnist(download=False)
    assert_says_how_to_get_the_data(str(raised.value))


def test_a_failed_download_says_how_to_get_it_and_why_it_failed(nothing_anywhere):
    def offline():
        raise OSError("[Errno 101] Network is unreachable")

    with pytest.raises(DataNotFoundError) as raised:
        load_fashion_mnist(download=offline)
    message = str(raised.value)
    assert_says_how_to_get_the_data(message)
    assert "Network is unreachable" in message


def test_a_download_is_verified_like_any_local_copy(nothing_anywhere, copy_dir):
    break_folder(copy_dir)
    with pytest.raises(CorruptDataError):
        load_fashion_mnist(download=lambda: copy_dir)


def test_the_prediction_model_is_the_same_when_judges_build_it_at_once():
    """``--workers 2`` judges two submissions at once in one process, and each builds the model that
    checks ``predict_labels``: its weights must not depend on Keras's process-wide random state,
    which a neighbour's build reseeds meanwhile (a correct ``predict_labels`` lost its 5 points)."""
    from concurrent.futures import ThreadPoolExecutor

    from autograder.data.reference import prediction_model

    expected = prediction_model().get_weights()
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: prediction_model().get_weights(), range(24)))
    assert all(all(np.array_equal(a, b) for a, b in zip(weights, expected)) for weights in built)


def test_the_prediction_model_tells_a_second_scaling_and_probabilities_from_class_ids(dataset):
    """What ``check_predict_labels`` relies on: on the images it checks, the model's answers differ from
    image to image, and most change when the images are scaled again."""
    from autograder.data.reference import prediction_model, scaled
    from autograder.judge.model_checks import PREDICT_SAMPLE, disagreements

    images = scaled(dataset[1][0][:PREDICT_SAMPLE])
    model = prediction_model()
    probabilities = np.asarray(model.predict(images, verbose=0))
    answers = probabilities.argmax(axis=-1)
    assert len(set(answers.tolist())) >= 8
    assert disagreements(np.asarray(model.predict(images / 255.0, verbose=0)).argmax(axis=-1), probabilities) >= 450
    assert disagreements(answers, probabilities) == 0
