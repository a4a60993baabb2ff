"""The kit's trainer: it trains what a fit call describes, and nothing the student's process does
afterwards changes its record."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.errors import TrainingNotReproducible
from autograder.limits import Limits
from autograder.sandbox import frames
from autograder.sandbox.fit_client import FitClient, LocalTransport
from autograder.trainer.records import compile_signature, model_signature
from autograder.trainer.service import Trainer


@pytest.fixture(scope="module")
def small(small_split):
    return small_split


def lesson_model(seed: int = 42, optimizer="sgd"):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(30, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def client_for(trainer, arrays):
    client = FitClient(LocalTransport(trainer), known=arrays)
    return client


def fit(client, model, arrays, **options):
    with client.installed(model):
        return model.fit(arrays["X_train"], arrays["y_train"], validation_data=(arrays["X_valid"], arrays["y_valid"]),
                         **{"epochs": 2, **options})


def test_the_trainer_trains_from_the_kit_s_seed_whatever_the_student_s_weights(small, tmp_path):
    arrays, test = small
    honest = Trainer(arrays, test)
    history = fit(client_for(honest, arrays), lesson_model(), arrays)
    forged_model = lesson_model(seed=7)
    forged_model.set_weights([w * 0 + 5 for w in forged_model.get_weights()])  # "pre-trained" weights
    forged = Trainer(arrays, test)
    fit(client_for(forged, arrays), forged_model, arrays)
    first, second = honest.finish(), forged.finish()
    assert first.calls[0].history == second.calls[0].history
    assert np.array_equal(first.predictions, second.predictions)
    # The student's model holds the trainer's weights, and its History the trainer's history.
    assert history.history == first.calls[0].history and len(history.history["loss"]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(forged_model.get_weights(), honest.model.get_weights()))


def test_what_the_student_s_code_does_after_fit_changes_nothing_recorded(small):
    arrays, test = small
    trainer = Trainer(arrays, test)
    model = lesson_model()
    history = fit(client_for(trainer, arrays), model, arrays, epochs=1)
    history.history = {name: values * 30 for name, values in history.history.items()}
    for variable in model.trainable_variables:
        variable.assign(np.zeros(variable.shape, dtype="float32"))
    record = trainer.finish()
    assert record.calls[0].epochs_run == 1 and len(record.history()["loss"]) == 1
    assert len(set(record.predictions.tolist())) > 1, "the trainer's model, not the zeroed one, was measured"


def test_a_warm_trainer_serves_the_next_submission_as_a_new_trainer_would(small):
    """A trainer kept warm (autograder.trainer.desk.WarmTrainers) forgets the last submission: the next
    one's first call is not taken for the continuation of the last one's training (whose weights it
    does not hold, so it would be refused), and it trains what a new trainer trains."""
    arrays, test = small
    fresh = Trainer(arrays, test)
    fit(client_for(fresh, arrays), lesson_model(), arrays)
    warm = Trainer(arrays, test)
    last = lesson_model()
    fit(client_for(warm, arrays), last, arrays, epochs=1)
    fit(client_for(warm, arrays), last, arrays, epochs=1)  # a chain of two calls, left as it ended
    warm.finish()
    warm.next_submission()
    fit(client_for(warm, arrays), lesson_model(), arrays)
    kept, new = warm.finish(), fresh.finish()
    assert len(kept.calls) == 1 and kept.calls[0].trained and not kept.calls[0].continues
    assert kept.calls[0].history == new.calls[0].history and kept.calls[0].key == new.calls[0].key
    assert np.array_equal(kept.predictions, new.predictions)


class FakeTrainer:
    """What ``WarmTrainers`` asks of a trainer process."""

    def __init__(self, resident: int = 1024**3, address_space: int = 3 * 1024**3):
        self.resident, self.submissions, self.closed, self.died = resident, 0, False, False
        self.address_space = address_space
        self.tail = bytearray(b"the last submission's words")

    def alive(self) -> bool:
        return not (self.closed or self.died)

    def memory(self) -> tuple[int, int]:
        return self.resident, self.address_space

    def close(self) -> None:
        self.closed = True


def test_a_trainer_is_kept_warm_for_its_own_thread_only_and_only_while_it_is_sound():
    import threading

    from autograder.trainer.desk import KEEP_RESIDENT_BYTES, WARM_USES, WarmTrainers

    pool = WarmTrainers(Limits().memory_bytes)
    assert pool.take() is None
    trainer = FakeTrainer()
    pool.give_back(trainer, served=True)
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(pool.take()))
    thread.start()
    thread.join()
    assert elsewhere == [None], "another grading thread starts its own trainer"
    assert pool.take() is trainer and not trainer.closed and trainer.tail == b""
    pool.give_back(trainer, served=False)  # timed out, broke, or the batch is stopping
    assert trainer.closed and pool.take() is None

    large = FakeTrainer(resident=KEEP_RESIDENT_BYTES + 1)  # what the last submission left in it
    pool.give_back(large, served=True)
    assert large.closed and pool.take() is None
    died = FakeTrainer()
    pool.give_back(died, served=True)
    died.died = True
    assert pool.take() is None and died.closed
    worn = FakeTrainer()
    worn.submissions = WARM_USES - 1
    pool.give_back(worn, served=True)
    assert worn.closed

    last = FakeTrainer()
    pool.give_back(last, served=True)
    pool.close()
    assert last.closed
    late = FakeTrainer()
    pool.give_back(late, served=True)  # a thread finishing after the batch closed
    assert late.closed


def test_closing_the_kept_trainers_interrupted_leaves_the_rest_to_the_next_close():
    """Ctrl-C while the first trainer closes: the others were dropped from the set unclosed (helper-84)."""
    import threading

    from autograder.trainer.desk import WarmTrainers

    class Interrupted(FakeTrainer):
        def close(self):
            if not self.closed:
                self.closed = True
                raise KeyboardInterrupt

    pool = WarmTrainers(Limits().memory_bytes)
    trainers = [Interrupted() for _ in range(3)]  # each interrupted once while it closes
    for trainer in trainers:  # one per grading thread
        thread = threading.Thread(target=pool.give_back, args=(trainer, True))
        thread.start()
        thread.join()
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            pool.close()
    pool.close()
    assert all(trainer.closed for trainer in trainers)


def test_a_trainer_is_kept_warm_only_while_it_leaves_the_next_submission_its_room_under_the_memory_limit():
    """The limit a training fails at is each process's address space (RLIMIT_AS, the instructor's
    --memory-limit), not a fixed resident size: every distinct model a submission trains leaves its
    compiled programs in the trainer (about 9 MiB each, measured), so one submission's many fit calls
    could hand its neighbour a trainer with too little of the limit left to train the lesson's model."""
    from autograder.trainer.desk import KEEP_ROOM_BYTES, WarmTrainers

    limit = 5 * 1024**3  # an instructor's --memory-limit 5
    pool = WarmTrainers(memory_bytes=limit)
    grown = FakeTrainer(resident=2 * 1024**3, address_space=limit - KEEP_ROOM_BYTES + 1)
    pool.give_back(grown, served=True)
    assert grown.closed and pool.take() is None
    resident = FakeTrainer(resident=limit - KEEP_ROOM_BYTES + 1, address_space=1024**3)  # the memory cgroup's share
    pool.give_back(resident, served=True)
    assert resident.closed and pool.take() is None
    roomy = FakeTrainer(resident=1024**3, address_space=limit - KEEP_ROOM_BYTES)
    pool.give_back(roomy, served=True)
    assert pool.take() is roomy and not roomy.closed


def test_a_trainer_is_kept_warm_only_while_it_leaves_room_under_the_batch_s_share_of_memory():
    """A batch of many workers holds each trainer's memory cgroup below the address-space limit
    (autograder.sandbox.slots.memory_share): the room kept for the next submission is under the share."""
    from autograder.sandbox.slots import GROUP_FLOOR_BYTES
    from autograder.trainer.desk import KEEP_GROUP_ROOM_BYTES, KEEP_ROOM_BYTES, WarmTrainers

    share = 5 * 1024**3
    pool = WarmTrainers(Limits().memory_bytes, share)
    full = FakeTrainer(resident=share - KEEP_GROUP_ROOM_BYTES + 1, address_space=1024**3)
    pool.give_back(full, served=True)
    assert full.closed and pool.take() is None
    roomy = FakeTrainer(resident=share - KEEP_GROUP_ROOM_BYTES,
                        address_space=Limits().memory_bytes - KEEP_ROOM_BYTES)
    pool.give_back(roomy, served=True)
    assert pool.take() is roomy and not roomy.closed
    # At the least share a batch holds a group to, the trainer the lesson leaves (1.3 GiB) still serves.
    floor = WarmTrainers(Limits().memory_bytes, GROUP_FLOOR_BYTES)
    lesson = FakeTrainer(resident=int(1.3 * 1024**3), address_space=int(3.4 * 1024**3))
    floor.give_back(lesson, served=True)
    assert floor.take() is lesson


def test_fit_calls_in_a_row_continue_the_trainer_s_own_training(small):
    arrays, test = small
    trainer = Trainer(arrays, test)
    client = client_for(trainer, arrays)
    model = lesson_model()
    fit(client, model, arrays, epochs=1)
    fit(client, model, arrays, epochs=2)
    record = trainer.finish()
    assert [call.continues for call in record.calls] == [False, True]
    assert sum(call.epochs_run for call in record.final_chain()) == 3
    assert len(record.history()["val_accuracy"]) == 3


def test_weights_changed_between_two_fit_calls_are_refused_with_a_message(small):
    arrays, test = small
    trainer = Trainer(arrays, test)
    client = client_for(trainer, arrays)
    model = lesson_model()
    fit(client, model, arrays, epochs=1)
    model.set_weights([w + 1 for w in model.get_weights()])
    with pytest.raises(TrainingNotReproducible, match="weights were changed between two fit calls"):
        fit(client, model, arrays, epochs=1)
    assert trainer.record.calls[-1].trained is False


def test_a_refusal_is_kept_as_a_catalogue_message_and_said_in_the_student_s_language(small):
    """The trainer's record keeps why it refused as the catalogue's message and its fields: a refusal
    stored in English is shown in Chinese to a Chinese notebook, and the student's process says it in
    its own language."""
    from autograder.errors import CheckFailed
    from autograder.i18n import speaking
    from autograder.judge.evidence import Evidence
    from autograder.judge.training_checks import trained_chain
    from autograder.sandbox.artifacts import Artifacts

    arrays, test = small
    trainer = Trainer(arrays, test)
    client = client_for(trainer, arrays)
    with pytest.raises(TrainingNotReproducible, match=r"^shuffle='yes': the grader takes True or False$"):
        fit(client, lesson_model(), arrays, epochs=1, shuffle="yes")
    refused = trainer.record.calls[-1]
    assert (refused.message, refused.fields) == ("{argument}: the grader takes True or False",
                                                 {"argument": "shuffle='yes'"})
    with speaking("zh_CN"):
        assert refused.reason() == "shuffle='yes'：评分程序只接受 True 或 False"
        with pytest.raises(TrainingNotReproducible, match=r"^shuffle='yes'：评分程序只接受 True 或 False$"):
            fit(client, lesson_model(), arrays, epochs=1, shuffle="yes")

        evidence = Evidence(Artifacts(values={"training": {"epochs_probe_calls": 0}}), None, trainer.record)
        with pytest.raises(CheckFailed, match="^训练失败：shuffle='yes'：评分程序只接受 True 或 False$"):
            trained_chain(evidence)


def test_a_refusal_whose_fields_do_not_fit_its_message_is_shown_as_it_came():
    from autograder.i18n import speaking, translated
    from autograder.sandbox.fit_client import refused

    with speaking("zh_CN"):
        assert translated("`{name}` was not sent", {"name": "x"}) == "没有收到 `x`"
        assert translated("`{name}` was not sent", {}) == "`{name}` was not sent"
        assert translated("a message of no catalogue: {what}", {"what": "x"}) == "a message of no catalogue: x"
        assert refused({"ok": False}) == "评分程序的训练器拒绝了这次训练"
        assert refused({"message": "`{name}` was not sent", "fields": {"name": 3}}) == "`{name}` was not sent"
        assert translated("`{name}` was not sent", ["x"]) == "`{name}` was not sent"
    from autograder.trainer.records import FitRecord

    assert FitRecord.from_json({"trained": False, "message": "`{name}` was not sent", "fields": ["x"]}).fields == {}
    assert FitRecord.from_json({"trained": False, "message": 3, "fields": {"name": 4}}).reason() == "3"


def test_a_refusal_with_no_message_says_the_trainer_refused_not_the_catalogue_s_header():
    """gettext's translation of the empty message is the catalogue's header (Project-Id-Version, ...):
    a record with no message must not show it to a Chinese student."""
    from autograder.i18n import _, speaking, translated
    from autograder.trainer.records import FitRecord

    with speaking("zh_CN"):
        assert _("") == "" and translated("") == ""
        for record in (FitRecord(trained=False), FitRecord.from_json({"trained": False, "message": None}),
                       FitRecord.from_json({"trained": False, "message": ""})):
            assert record.reason() == "评分程序的训练器拒绝了这次训练", record.reason()[:80]
    assert FitRecord(trained=False).reason() == "the grader's trainer refused this training"


def test_the_student_s_callbacks_and_datasets_get_a_clear_message(small):
    import keras

    arrays, test = small
    client = client_for(Trainer(arrays, test), arrays)
    model = lesson_model()
    with pytest.raises(TrainingNotReproducible, match="cannot run your callbacks .EarlyStopping"):
        fit(client, model, arrays, callbacks=[keras.callbacks.EarlyStopping()])
    with pytest.raises(TrainingNotReproducible, match="the grader trains on arrays"):
        with client.installed(model):
            model.fit((x for x in []), epochs=1)


def test_data_other_than_the_kit_s_is_sent_and_named_as_such(small):
    arrays, test = small
    trainer = Trainer(arrays, test)
    model = lesson_model()
    with client_for(trainer, arrays).installed(model):
        model.fit(arrays["X_train"][:100].astype("float64"), arrays["y_train"][:100], epochs=1,
                  validation_data=(arrays["X_valid"], arrays["y_valid"]))
    call = trainer.record.calls[0]
    assert call.trained and call.x is None and call.validation == ["X_valid", "y_valid"]


def test_an_identical_description_is_replayed_from_the_trainer_s_own_cache(small, tmp_path):
    arrays, test = small
    first, second, other = (Trainer(arrays, test, cache=tmp_path / "cache") for _ in range(3))
    fit(client_for(first, arrays), lesson_model(), arrays)
    fit(client_for(second, arrays), lesson_model(seed=3), arrays)  # other claimed weights: the same training
    fit(client_for(other, arrays), lesson_model(optimizer="adam"), arrays)
    records = [trainer.finish() for trainer in (first, second, other)]
    assert [r.calls[0].reused for r in records] == [False, True, False]
    assert records[0].calls[0].history == records[1].calls[0].history
    assert np.array_equal(records[0].predictions, records[1].predictions)
    assert [r.trainings_run for r in records] == [1, 0, 1] == [r.trainings_stored for r in records]


def test_trainings_kept_from_an_earlier_run_are_replayed_and_only_complete_ones_are_copied(small, tmp_path):
    from autograder.trainer.cache import copy_entries

    arrays, test = small
    kept, first_run, second_run = tmp_path / "kept", tmp_path / "run1", tmp_path / "run2"
    kept.mkdir()
    trainer = Trainer(arrays, test, cache=first_run)
    fit(client_for(trainer, arrays), lesson_model(), arrays)
    assert copy_entries(first_run, kept) == 1 and copy_entries(first_run, kept) == 0
    (key,) = [folder.name for folder in kept.iterdir()]
    # What is not a whole training under its key is never copied: a half-written one, a link, a file.
    (kept / ("a" * 64)).mkdir()
    (kept / ("b" * 64)).symlink_to(kept / key)
    (kept / ("c" * 64)).write_text("")
    (kept / "not-a-key").mkdir()
    assert copy_entries(kept, second_run) == 1
    assert [folder.name for folder in second_run.iterdir()] == [key]
    replayed = Trainer(arrays, test, cache=second_run)
    fit(client_for(replayed, arrays), lesson_model(seed=5), arrays)
    records = [trainer.finish(), replayed.finish()]
    assert [r.calls[0].reused for r in records] == [False, True]
    assert records[0].calls[0].history == records[1].calls[0].history
    assert np.array_equal(records[0].predictions, records[1].predictions)


def test_a_model_signature_ignores_names_only(small):
    import keras

    keras.utils.set_random_seed(1)
    a = lesson_model()
    b = lesson_model()  # dense_2, dense_3...: other names, the same network
    serialized = [keras.saving.serialize_keras_object(m) for m in (a, b)]
    compiled = [config.pop("compile_config") for config in serialized]
    assert model_signature(serialized[0]) == model_signature(serialized[1])
    assert compile_signature(compiled[0]) == compile_signature(compiled[1])  # optimizers sgd and sgd_1
    c = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(), keras.layers.Dense(31)])
    assert model_signature(keras.saving.serialize_keras_object(c)) != model_signature(serialized[0])


def test_frames_bound_what_a_peer_may_send():
    import io

    data = frames.encode({"op": "fit"}, {"model.keras": b"x" * 100})
    header, blobs = frames.decode(frames.reader(io.BytesIO(data).read), 100)
    assert header == {"op": "fit"} and blobs == {"model.keras": b"x" * 100}
    with pytest.raises(frames.FrameError, match="blobs of more than"):
        frames.decode(frames.reader(io.BytesIO(data).read), 99)
    huge = (frames.MAX_HEADER_BYTES + 1).to_bytes(8, "big")
    with pytest.raises(frames.FrameError, match="a header of"):
        frames.decode(frames.reader(io.BytesIO(huge).read), 100)
    with pytest.raises(frames.FrameError, match="closed"):
        frames.decode(frames.reader(io.BytesIO(data[:20]).read), 100)
    text = b'{"op": "fit", "blobs": [["../../etc/passwd", 3]]}'
    lying = len(text).to_bytes(8, "big") + text + b"abc"
    with pytest.raises(frames.FrameError, match="malformed"):
        frames.decode(frames.reader(io.BytesIO(lying).read), 100)


def test_a_signature_keeps_what_computes_a_dtype_an_activation_behind_a_layer_s_name():
    import keras

    def model(flatten_dtype=None, names=("a", "b"), activation="relu"):
        return keras.saving.serialize_keras_object(keras.Sequential([
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(dtype=flatten_dtype),
            keras.layers.Dense(30, activation=activation, name=names[0]),
            keras.layers.Dense(10, activation="softmax", name=names[1]),
        ]))

    honest = model_signature(model())
    assert model_signature(model(names=("c", "d"))) == honest
    assert model_signature(model(flatten_dtype="int32")) != honest
    # A layer named like an activation: renaming it must not make another activation look equal.
    assert model_signature(model(names=("relu", "x"))) != model_signature(model(names=("tanh", "x"), activation="tanh"))


def test_a_functional_model_s_references_to_its_layers_are_names_too():
    import keras

    def functional(prefix):
        inputs = keras.Input(shape=(28, 28), name=f"{prefix}_in")
        hidden = keras.layers.Dense(30, activation="relu", name=f"{prefix}_h")(keras.layers.Flatten()(inputs))
        outputs = keras.layers.Dense(10, activation="softmax", name=f"{prefix}_out")(hidden)
        return keras.saving.serialize_keras_object(keras.Model(inputs, outputs))

    assert model_signature(functional("a")) == model_signature(functional("b"))


def test_a_fit_call_that_fails_ends_its_chain_so_no_classmate_replays_what_it_left(small, tmp_path):
    """A call can fail after it changed the trainer's model: it trains on other data, then trips in
    Keras's validation pass (validation data with sample weights of the wrong length). A next call that
    continued the chain would train what the failed call left, under the key of an honest two-call
    training, and store it where a classmate's identical calls replay it."""
    import io

    from autograder.sandbox.fit_client import npy, saved_model

    arrays, test = small
    honest = {"x": {"ref": "X_train"}, "y": {"ref": "y_train"}, "epochs": 1,
              "validation_data": [{"ref": "X_valid"}, {"ref": "y_valid"}]}

    def weights(blobs):
        with np.load(io.BytesIO(blobs["weights.npz"])) as saved:
            return [saved[f"w{index}"] for index in range(len(saved.files))]

    def two_calls(trainer, between=None):
        model = lesson_model()
        _, blobs = trainer.handle({"op": "fit", "arguments": honest}, {"model.keras": saved_model(model)})
        model.set_weights(weights(blobs))
        if between:
            between(model)
        header, _ = trainer.handle({"op": "fit", "arguments": honest}, {"model.keras": saved_model(model)})
        return header["record"], trainer.finish()

    def poisoned_then_failed(model):
        header, _ = attacker.handle({"op": "fit", "arguments": {
            "x": {"blob": "huge.npy"}, "y": {"ref": "y_train"}, "epochs": 1,
            "validation_data": [{"ref": "X_valid"}, {"ref": "y_valid"}, {"blob": "three.npy"}],
        }}, {"model.keras": saved_model(model), "huge.npy": npy(arrays["X_train"] * np.float32(1e20)),
             "three.npy": npy(np.ones(3, np.float32))})
        assert not header["record"]["trained"]

    attacker = Trainer(arrays, test, cache=tmp_path)
    record, _ = two_calls(attacker, poisoned_then_failed)
    assert not record["continues"]  # a new chain: the failed call left nothing to continue
    shared, alone = (two_calls(Trainer(arrays, test, cache=cache))[1] for cache in (tmp_path, None))
    assert np.array_equal(shared.predictions, alone.predictions)


def test_a_name_reused_inside_a_nested_model_does_not_make_two_wirings_one_signature():
    """A Functional model refers to its own layers by name; a model used as a layer has names of its
    own, which may repeat the outer model's. Two outer heads that swap the name of a nested layer
    are two networks (the output is one head or the other) and must never share a training's key."""
    import copy

    import keras

    inner = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(30, activation="relu", name="t")])
    inputs = keras.Input(shape=(28, 28))
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(inner(keras.layers.Flatten()(inputs)))
    config = keras.saving.serialize_keras_object(keras.Model(inputs, outputs))
    trained = config["config"]["layers"][-1]
    frozen = copy.deepcopy(trained)
    frozen["config"]["trainable"] = False

    def wired(trained_name, frozen_name, output="t"):
        variant = copy.deepcopy(config)
        heads = [copy.deepcopy(trained), copy.deepcopy(frozen)]
        for head, name in zip(heads, (trained_name, frozen_name)):
            head["name"] = head["config"]["name"] = name
        variant["config"]["layers"][-1:] = heads
        variant["config"]["output_layers"] = [[output, 0, 0]]  # the output: the outer layer of that name
        return variant

    assert model_signature(wired("t", "w")) != model_signature(wired("z", "t"))
    assert model_signature(wired("t", "w")) == model_signature(wired("q", "w", output="q"))  # names only


def test_a_replayed_call_leaves_the_model_as_training_it_would_so_the_next_call_trains_the_same(small, tmp_path):
    """One key, one computation: a replay restores every variable the training left, the random
    state of Dropout's seed generator among them, not only the weights."""
    import keras

    arrays, test = small

    def with_dropout():
        keras.utils.set_random_seed(42)
        model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                                  keras.layers.Dense(30, activation="relu"), keras.layers.Dropout(0.5),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
        return model

    fit(client_for(Trainer(arrays, test, cache=tmp_path), arrays), with_dropout(), arrays, epochs=1)
    histories = []
    for cache in (tmp_path, None):  # the first call replayed, then trained
        trainer = Trainer(arrays, test, cache=cache)
        client, model = client_for(trainer, arrays), with_dropout()
        fit(client, model, arrays, epochs=1)
        fit(client, model, arrays, epochs=1)
        record = trainer.finish()
        assert [call.reused for call in record.calls] == [cache is not None, False]
        histories.append(record.calls[1].history)
    assert histories[0] == histories[1]


def functional_chain():
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(28, 28), name="inp")
    x = keras.layers.Flatten(name="f")(inputs)
    for name, activation in (("a", "relu"), ("b", "sigmoid"), ("c", "tanh")):
        x = keras.layers.Dense(30, activation=activation, name=name)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="out")(x))
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    return model


def with_config(model_bytes: bytes, edit) -> bytes:
    """The .keras archive with its config.json edited, as a student's process can send it."""
    import io
    import json
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(model_bytes)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            archive.writestr(info.filename, data)
    return out.getvalue()


def test_a_training_s_key_is_the_network_keras_builds_not_the_words_of_its_configuration(small, tmp_path):
    """Keras wires a Functional model by each layer's outer name and leaves out layers off the way
    from the inputs to the outputs; the configuration's text can word one network two ways and two
    networks one way. Outer names permuted (a→b→c wired as a→c→b) must not be replayed as the honest
    chain, nor a nested model fed from another layer."""
    import keras

    from autograder.sandbox.fit_client import saved_model

    arrays, test = small
    honest = {"x": {"ref": "X_train"}, "y": {"ref": "y_train"}, "epochs": 1,
              "validation_data": [{"ref": "X_valid"}, {"ref": "y_valid"}]}

    def key(model_bytes):
        header, _ = Trainer(arrays, test, cache=tmp_path).handle({"op": "fit", "arguments": honest},
                                                                 {"model.keras": model_bytes})
        assert header["record"]["trained"], header
        return header["record"]["key"]

    def permuted(config):
        for layer in config["config"]["layers"]:
            layer["name"] = {"a": "b", "b": "c", "c": "a"}.get(layer["name"], layer["name"])

    chain = saved_model(functional_chain())
    assert key(with_config(chain, permuted)) != key(chain)

    def unconnected_first(config):  # layers off the way are built, and draw their initial weights first
        for number in range(3):
            layer = json_copy(config["config"]["layers"][2])
            layer["name"] = layer["config"]["name"] = f"unused{number}"
            config["config"]["layers"].insert(1, layer)

    first = tmp_path / "padded first"
    padded = Trainer(arrays, test, cache=first)
    header, _ = padded.handle({"op": "fit", "arguments": honest},
                              {"model.keras": with_config(chain, unconnected_first)})
    assert header["record"]["trained"] and not header["record"]["reused"], header
    trained = [Trainer(arrays, test, cache=cache) for cache in (first, None)]
    for trainer in trained:
        trainer.handle({"op": "fit", "arguments": honest}, {"model.keras": chain})
    shared, alone = (trainer.finish() for trainer in trained)
    assert np.array_equal(shared.predictions, alone.predictions)  # the key's network is what trains

    keras.utils.set_random_seed(1)
    inner = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(30, activation="relu")], name="inner")
    inputs = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten(name="f")(inputs)
    squashed = keras.layers.Activation("sigmoid", name="r")(flat)
    nested = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inner(squashed)))
    config = keras.saving.serialize_keras_object(nested)
    fed_otherwise = json_copy(config)
    [layer] = [layer for layer in fed_otherwise["config"]["layers"] if layer["name"] == "inner"]
    layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "f"  # r left off the way
    assert model_signature(fed_otherwise) != model_signature(config)


def json_copy(value):
    import json

    return json.loads(json.dumps(value))


def test_a_submission_of_many_fit_calls_stores_its_trainings_only_to_its_bounds_and_trains_them_all(
        small, tmp_path, monkeypatch):
    """Each call of a chain is a key of its own, so a train_model looping on fit stored a training per
    call with no end (a disk filled in about a minute with a large model): the trainer stores a
    submission's trainings within bounds, each submission of a warm trainer its own."""
    from autograder.trainer import cache

    monkeypatch.setattr(cache, "SUBMISSION_STORED_ENTRIES", 2)
    arrays, test = small
    trainer = Trainer(arrays, test, cache=tmp_path / "cache")
    client, model = client_for(trainer, arrays), lesson_model()
    for _ in range(4):
        fit(client, model, arrays, epochs=1)
    assert all(call.trained and call.epochs_run == 1 for call in trainer.finish().calls)
    assert len([p for p in (tmp_path / "cache").iterdir() if cache.is_entry(p)]) == 2

    trainer.next_submission()
    fit(client_for(trainer, arrays), lesson_model(optimizer="adam"), arrays, epochs=1)
    assert len([p for p in (tmp_path / "cache").iterdir() if cache.is_entry(p)]) == 3


def test_a_submission_s_fit_calls_end_at_a_bound_with_a_message(tmp_path):
    """A train_model looping on fit: each call is a trainer's round, a record the grader keeps and a
    lock file among the batch's trainings, so the desk answers a bounded number of them."""
    from autograder.trainer.desk import MAX_FIT_CALLS, FitDesk
    from autograder.trainer.records import FitRecord

    class QuickTrainer:
        rounds = 0

        def exchange(self, request, blobs, seconds, limit):
            self.rounds += 1
            return {"ok": True, "record": vars(FitRecord(trained=True, epochs_run=1))}, {}

        def kill(self):
            pass

    trainer = QuickTrainer()
    desk = FitDesk(tmp_path, trainer, training_seconds=60.0)
    try:
        replies = [desk.train({"arguments": {}}, {})[0] for _ in range(MAX_FIT_CALLS + 5)]
    finally:
        desk.finish(predict=False)
    assert trainer.rounds == MAX_FIT_CALLS
    assert all(reply["ok"] for reply in replies[:MAX_FIT_CALLS]) and not replies[MAX_FIT_CALLS]["ok"]
    assert f"more than {MAX_FIT_CALLS} times" in desk.record.calls[-1].reason()


def test_a_disk_with_no_room_for_a_training_s_lock_file_still_trains_it(small, tmp_path, monkeypatch):
    """Each new key takes a lock file, stored or not: on a disk out of room (or of inodes) the call was
    refused ("No space left on device") and an honest classmate lost the training and test accuracy."""
    import errno

    from autograder.trainer import cache

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache, "_open_lock", full)
    arrays, test = small
    trainer = Trainer(arrays, test, cache=tmp_path / "cache")
    fit(client_for(trainer, arrays), lesson_model(), arrays, epochs=1)
    (call,) = trainer.finish().calls
    assert call.trained and call.epochs_run == 1


def output_named_model(output=None, loss_key="out"):
    """The lesson's network, Functional, whose compile settings bind its loss to the output
    layer by name, as Keras allows: ``loss={"out": ...}``."""
    import keras

    keras.utils.set_random_seed(42)
    inputs = keras.Input(shape=(28, 28))
    hidden = keras.layers.Dense(30, activation="relu")(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(10, activation="softmax", **({"name": output} if output else {}))(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(loss={loss_key: "sparse_categorical_crossentropy"}, optimizer="sgd", metrics=["accuracy"])
    return model


def test_a_loss_that_names_a_layer_the_model_lacks_fails_as_in_keras_even_beside_a_classmate_s_training(
        small, tmp_path):
    """The key leaves layers' names aside, but a loss or a metric given per output names its layer: a
    classmate's training whose names match must not stand for one whose names Keras refuses."""
    arrays, test = small
    classmate, student = {"output": "out"}, {}  # the student's loss names a layer their model lacks (helper-57)
    with pytest.raises(ValueError, match="Expected keys"):  # what the student's notebook shows
        output_named_model(**student).fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)
    stored = Trainer(arrays, test, cache=tmp_path)
    fit(client_for(stored, arrays), output_named_model(**classmate), arrays, epochs=1)
    assert stored.finish().calls[0].trained
    trainer = Trainer(arrays, test, cache=tmp_path)
    with pytest.raises(TrainingNotReproducible):
        fit(client_for(trainer, arrays), output_named_model(**student), arrays, epochs=1)
    assert not trainer.finish().calls[0].trained


def test_the_test_set_is_measured_alike_after_a_training_and_after_its_replay(small, tmp_path):
    """Bit for bit: a near tie at the pass mark must not go one way fresh and the other way replayed."""
    arrays, test = small
    fresh, replayed = (Trainer(arrays, test, cache=tmp_path) for _ in range(2))
    for trainer in (fresh, replayed):
        fit(client_for(trainer, arrays), lesson_model(), arrays, epochs=1)
    assert [trainer.record.calls[0].reused for trainer in (fresh, replayed)] == [False, True]
    assert np.array_equal(fresh.test_outputs(), replayed.test_outputs())


def dict_output_model(flatten: str, loss_key: str):
    """Outputs given as a dict, ``{"probs": ...}``: Keras matches a per-output loss to its keys, not to
    the layers' names."""
    import keras

    keras.utils.set_random_seed(42)
    inputs = keras.Input(shape=(28, 28))
    hidden = keras.layers.Dense(30, activation="relu")(keras.layers.Flatten(name=flatten)(inputs))
    model = keras.Model(inputs, {"probs": keras.layers.Dense(10, activation="softmax")(hidden)})
    model.compile(loss={loss_key: "sparse_categorical_crossentropy"}, optimizer="sgd")
    return model


def test_a_loss_keyed_by_a_layer_s_name_on_outputs_given_as_a_dict_is_not_bound_to_that_layer(small, tmp_path):
    """A layer named as the output's key, beside one that is not: Keras takes the first and refuses the
    second, so the first's stored training must not stand for the second (helper-58 F2)."""
    arrays, test = small
    with pytest.raises(KeyError):
        dict_output_model("flat", "flat").fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)
    stored = Trainer(arrays, test, cache=tmp_path)
    fit(client_for(stored, arrays), dict_output_model("probs", "probs"), arrays, epochs=1)
    assert stored.finish().calls[0].trained
    trainer = Trainer(arrays, test, cache=tmp_path)
    with pytest.raises(TrainingNotReproducible):
        fit(client_for(trainer, arrays), dict_output_model("flat", "flat"), arrays, epochs=1)
    assert not trainer.finish().calls[0].reused


def test_outputs_given_as_a_dict_are_numbered_as_a_list_s_are():
    """Two processes that built other models before name the same network's layers apart (dense_1,
    dense_3): a signature that kept them would keep a classmate's training from standing for it."""
    first = without_compile_config(dict_output_model("probs", "probs"))
    dict_output_model("probs", "probs")  # the next one's layers get other names
    assert model_signature(first) == model_signature(without_compile_config(dict_output_model("probs", "probs")))


def without_compile_config(model) -> dict:
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    return config


def nested_dict_output_model(name: str):
    """A Sequential around a Functional model whose outputs are a dict named by ``name``, with a loss
    keyed by that name: Keras takes it when the model is named so, not otherwise (helper-59 F1)."""
    import keras

    keras.utils.set_random_seed(42)
    inputs = keras.Input(shape=(28, 28))
    hidden = keras.layers.Dense(30, activation="relu")(keras.layers.Flatten()(inputs))
    inner = keras.Model(inputs, {"k": keras.layers.Dense(10, activation="softmax")(hidden)}, name=name)
    model = keras.Sequential([keras.Input(shape=(28, 28)), inner])
    model.compile(loss={name: "sparse_categorical_crossentropy"}, optimizer="sgd")
    return model


def test_a_loss_keyed_by_a_nested_model_s_name_is_not_read_as_its_output_s_key(small, tmp_path):
    arrays, test = small
    with pytest.raises(KeyError):
        nested_dict_output_model("f1").fit(arrays["X_train"], arrays["y_train"], epochs=1, verbose=0)
    stored = Trainer(arrays, test, cache=tmp_path)
    fit(client_for(stored, arrays), nested_dict_output_model("k"), arrays, epochs=1)
    assert stored.finish().calls[0].trained
    trainer = Trainer(arrays, test, cache=tmp_path)
    with pytest.raises(TrainingNotReproducible):
        fit(client_for(trainer, arrays), nested_dict_output_model("f1"), arrays, epochs=1)
    assert not trainer.finish().calls[0].reused


@pytest.mark.parametrize("setting", ["loss", "metrics"])
def test_a_dict_shaped_like_a_saved_loss_is_refused_as_keras_refuses_it(small, setting):
    """Keras reads a dict given to compile as one entry per output, and fails on {"class_name": ...};
    saved and loaded, the same dict reads as a loss object, which trained for 100 (helper-58)."""
    import keras

    arrays, test = small
    model = lesson_model()
    saved = keras.losses.SparseCategoricalCrossentropy() if setting == "loss" else keras.metrics.Accuracy()
    shaped = dict(keras.saving.serialize_keras_object(saved))
    model.compile(**{"loss": "sparse_categorical_crossentropy", "optimizer": "sgd", setting: shaped})
    with pytest.raises(TrainingNotReproducible, match=f"`{setting}` is a dict, .*'class_name'"):
        fit(client_for(Trainer(arrays, test), arrays), model, arrays, epochs=1)


def test_a_network_of_bfloat16_layers_trains_and_replays_as_in_keras(small, tmp_path):
    """NumPy has no bfloat16 of its own: saved as it is, the weights read back as raw bytes that no model
    takes, and the training Keras runs failed in the kit (helper-58)."""
    import keras

    arrays, test = small

    def bfloat16_model():
        keras.utils.set_random_seed(42)
        model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                                  keras.layers.Dense(30, activation="relu", dtype="bfloat16"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model

    first, replayed = (Trainer(arrays, test, cache=tmp_path / "cache") for _ in range(2))
    models = [bfloat16_model(), bfloat16_model()]
    for trainer, model in zip((first, replayed), models):
        fit(client_for(trainer, arrays), model, arrays, epochs=1)
    records = [trainer.finish() for trainer in (first, replayed)]
    assert [record.calls[0].reused for record in records] == [False, True]
    assert records[0].calls[0].history == records[1].calls[0].history
    assert np.array_equal(records[0].predictions, records[1].predictions)
    assert str(models[1].layers[1].kernel.dtype) == "bfloat16"
    assert all(np.array_equal(np.asarray(a, "float32"), np.asarray(b, "float32"))
               for a, b in zip(models[0].get_weights(), models[1].get_weights()))


def test_a_warm_trainer_s_next_submission_has_the_store_bounds_of_its_own(small, tmp_path, monkeypatch):
    """The bounds on what one submission stores are a submission's: counted over a warm trainer's 25
    uses, its later submissions would store nothing, and their copies would train again."""
    from autograder.trainer import cache

    monkeypatch.setattr(cache, "SUBMISSION_STORED_ENTRIES", 1)
    arrays, test = small
    warm = Trainer(arrays, test, cache=tmp_path / "cache")
    fit(client_for(warm, arrays), lesson_model(), arrays, epochs=1)
    warm.finish()
    warm.next_submission()
    fit(client_for(warm, arrays), lesson_model(optimizer="adam"), arrays, epochs=1)
    assert warm.finish().trainings_stored == 1
    assert len([entry for entry in (tmp_path / "cache").iterdir() if not entry.name.startswith(".")]) == 2


def test_keras_s_own_callbacks_that_only_watch_the_training_are_trained_without(small, tmp_path, monkeypatch):
    """ModelCheckpoint, CSVLogger, TensorBoard change nothing in a training: it is the one without them,
    replayed as such, and the checkpoint holds the model the training left, for code that loads it
    (helper-66: 70 for a correct notebook). A subclass may change anything: refused."""
    import keras

    arrays, test = small
    monkeypatch.chdir(tmp_path)
    plain, watched = (Trainer(arrays, test, cache=tmp_path / "cache") for _ in range(2))
    fit(client_for(plain, arrays), lesson_model(), arrays, epochs=1)
    model = lesson_model()
    fit(client_for(watched, arrays), model, arrays, epochs=1, callbacks=[
        keras.callbacks.ModelCheckpoint("best.keras", save_best_only=True), keras.callbacks.CSVLogger("log.csv"),
        keras.callbacks.ModelCheckpoint("epoch_{epoch:02d}.weights.h5", save_weights_only=True),
        keras.callbacks.ModelCheckpoint("training_1/cp.weights.h5", save_weights_only=True)])  # helper-71 D1
    first, second = plain.finish(), watched.finish()
    assert second.calls[0].reused and second.calls[0].key == first.calls[0].key
    reloaded = keras.models.load_model("best.keras")
    assert all(np.array_equal(a, b) for a, b in zip(reloaded.get_weights(), model.get_weights()))
    assert (tmp_path / "epoch_01.weights.h5").is_file()
    model.load_weights("training_1/cp.weights.h5")  # Keras makes the folder; the tutorial loads it back

    class Watching(keras.callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    with pytest.raises(TrainingNotReproducible, match="cannot run your callbacks .Watching"):
        fit(client_for(Trainer(arrays, test), arrays), lesson_model(), arrays, epochs=1,
            callbacks=[Watching("x.keras")])


def test_a_history_given_as_a_callback_is_the_one_fit_fills_and_returns(small):
    """Keras fills a History it is given and returns it (helper-68 F1): the kit did neither."""
    import keras

    arrays, test = small
    model, given, last = lesson_model(), keras.callbacks.History(), keras.callbacks.History()
    client = client_for(Trainer(arrays, test), arrays)
    returned = fit(client, model, arrays, epochs=1, callbacks=[given])
    assert returned is given and len(given.history["loss"]) == 1 and given.epoch == [0]
    returned = fit(client, model, arrays, epochs=1, callbacks=[given, last])  # both filled, the last returned
    assert returned is last and len(given.history["loss"]) == 2 and len(last.history["loss"]) == 1


def test_a_watching_callback_with_a_method_of_its_own_is_refused(small, tmp_path, monkeypatch):
    """Keras calls a method set on the instance: it may stop or change the training (helper-68 F2)."""
    import keras

    arrays, test = small
    monkeypatch.chdir(tmp_path)
    model = lesson_model()
    checkpoint = keras.callbacks.ModelCheckpoint("c.keras")
    checkpoint.on_epoch_end = lambda epoch, logs=None: setattr(model, "stop_training", True)
    monitored = keras.callbacks.ModelCheckpoint("m.keras")
    monitored.monitor_op = lambda a, b: setattr(model, "stop_training", True)  # Keras calls it each epoch (helper-69)

    class Hiding(list):
        def __iter__(self):
            return iter([])

    for callbacks in ([checkpoint], [monitored], Hiding([keras.callbacks.EarlyStopping()])):
        with pytest.raises(TrainingNotReproducible, match="cannot run your callbacks"):
            fit(client_for(Trainer(arrays, test), arrays), model, arrays, epochs=1, callbacks=callbacks)


def test_a_request_nested_past_what_the_grader_can_encode_is_refused_and_the_desk_still_answers(tmp_path):
    """A header nested some 980 deep decoded, then raised RecursionError when the desk encoded it for the trainer:
    the desk's thread died, and every later `fit` of the submission waited for its time limit (helper-85 F3)."""
    import io
    import socket

    from autograder.trainer.desk import FitDesk
    from autograder.trainer.records import FitRecord

    class EncodingTrainer:  # encodes the request as the trainer process's pipe does
        def exchange(self, request, blobs, seconds, limit):
            frames.encode(request, blobs)
            return {"ok": True, "record": vars(FitRecord(trained=True, epochs_run=1))}, {}

        def kill(self):
            pass

    def ask(path, frame: bytes) -> dict | None:
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(10)
            connection.connect(str(path))
            connection.sendall(frame)
            try:
                return frames.decode(frames.reader(connection.recv), 1024)[0]
            except frames.FrameError:
                return None

    deep = b'{"arguments": ' + b"[" * 100 + b"]" * 100 + b"}"  # no fit argument nests a tenth as deep
    with pytest.raises(frames.FrameError, match="nested"):
        frames.decode(frames.reader(io.BytesIO(len(deep).to_bytes(8, "big") + deep).read), 1024)
    text = b'{"arguments": ' + b"[" * 980 + b"]" * 980 + b"}"
    desk = FitDesk(tmp_path, EncodingTrainer(), training_seconds=60.0)
    try:
        assert ask(desk.path, len(text).to_bytes(8, "big") + text) is None
        assert ask(desk.path, frames.encode({"arguments": {}}))["ok"]
    finally:
        desk.finish(predict=False)


def test_a_fault_of_the_desk_s_own_fails_the_training_with_a_message_and_later_calls_are_answered(tmp_path):
    import socket

    from autograder.trainer.desk import FitDesk

    class BrokenTrainer:
        def exchange(self, request, blobs, seconds, limit):
            raise RuntimeError("a fault no handler expects")

        def kill(self):
            pass

    desk = FitDesk(tmp_path, BrokenTrainer(), training_seconds=60.0)
    try:
        for _ in range(2):
            with socket.socket(socket.AF_UNIX) as connection:
                connection.settimeout(10)
                connection.connect(str(desk.path))
                connection.sendall(frames.encode({"arguments": {}}))
                try:
                    reply = frames.decode(frames.reader(connection.recv), 1024)[0]
                except frames.FrameError:  # the first: the desk failed while answering
                    reply = None
        assert reply is not None and not reply["ok"]
    finally:
        desk.finish(predict=False)
    assert "trainer stopped" in desk.record.calls[0].reason()
