"""The trusted side reads a child's artifacts as data only: no pickles, no classes from outside Keras."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from autograder.artifacts import ArtifactError, keras_modules_only, load_model_safely, read_artifacts, write_artifacts
from autograder.probe import Artifacts


def test_artifacts_round_trip_as_plain_data(tmp_path):
    artifacts = Artifacts(errors={"split": "boom"}, not_done={"normalize"}, arrays={"a": np.arange(3)}, values={"x": [1]})
    write_artifacts(artifacts, tmp_path)
    back = read_artifacts(tmp_path)
    assert back.errors == {"split": "boom"} and back.not_done == {"normalize"} and back.values == {"x": [1]}
    assert back.arrays["a"].tolist() == [0, 1, 2]


def test_a_pickled_array_is_refused(tmp_path):
    write_artifacts(Artifacts(), tmp_path)
    np.save(tmp_path / "arrays" / "evil.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        read_artifacts(tmp_path)


def test_a_file_that_is_not_an_array_is_refused(tmp_path):
    write_artifacts(Artifacts(), tmp_path)
    (tmp_path / "arrays" / "link.npy").symlink_to("/etc/hostname")
    with pytest.raises(ArtifactError, match="unexpected file"):
        read_artifacts(tmp_path)


def test_malformed_values_are_refused(tmp_path):
    write_artifacts(Artifacts(), tmp_path)
    (tmp_path / "values.json").write_text(json.dumps({"errors": ["not", "a", "dict"]}))
    with pytest.raises(ArtifactError, match="structure"):
        read_artifacts(tmp_path)


def test_a_model_naming_a_module_outside_keras_is_refused_before_keras_sees_it(tmp_path):
    with pytest.raises(ArtifactError, match="outside Keras"):
        keras_modules_only({"class_name": "system", "module": "os", "config": {}})
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"module": "subprocess", "class_name": "Popen", "config": {}}))
    with pytest.raises(ArtifactError, match="outside Keras"):
        load_model_safely(path)


def test_the_lesson_s_model_loads_in_safe_mode(tmp_path):
    from autograder.reference import build_reference_model

    model = build_reference_model()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    model.save(tmp_path / "model.keras")
    loaded = load_model_safely(tmp_path / "model.keras")
    assert [layer.count_params() for layer in loaded.layers] == [0, 235500, 30100, 1010]
    assert type(loaded.optimizer).__name__ == "SGD" and loaded.loss == "sparse_categorical_crossentropy"
