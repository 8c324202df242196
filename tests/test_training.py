"""Model building, training determinism and epoch resolution (tiny models, real Keras)."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

from cnnstudy import runtime
from cnnstudy.errors import DataError
from cnnstudy.epochs import resolve_epochs, round_half_up
from cnnstudy.kfold import select_epochs
from cnnstudy.params import KFoldParams, load_params

runtime.select_device("cpu")

import keras  # noqa: E402

from cnnstudy.models import build_cnn, weight_bytes  # noqa: E402
from cnnstudy.train_cnn import new_cnn, train_cnn  # noqa: E402
from cnnstudy.training import STEPS_PER_EXECUTION, compile_model, fit, targets, training_inputs  # noqa: E402


def train_once(cfg, digits, epochs=2):
    return train_cnn(cfg, (digits[0][:300], digits[1][:300]), (digits[0][300:], digits[1][300:]), epochs)


def test_baseline_has_the_reports_parameter_count():
    model = build_cnn(load_params().train)
    assert model.count_params() == 241_546
    assert weight_bytes(model) == 241_546 * 4


def test_batch_norm_and_augment_add_layers_but_keep_the_input():
    base = load_params().train
    bn = build_cnn(dataclasses.replace(base, batch_norm=True))
    aug = build_cnn(dataclasses.replace(base, augment=True))
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers)
    assert any(isinstance(layer, keras.layers.RandomRotation) for layer in aug.layers)
    assert any(isinstance(layer, keras.layers.RandomZoom) for layer in aug.layers)
    assert aug.count_params() == 241_546  # augmentation has no weights
    assert bn.input_shape == aug.input_shape == (None, 28, 28, 1)


@pytest.mark.parametrize("optimizer,cls", [("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_optimizer_and_learning_rate_are_applied(tiny, optimizer, cls):
    model = compile_model(build_cnn(tiny), optimizer, 0.05)
    assert type(model.optimizer).__name__ == cls
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


def test_same_seed_gives_identical_weights_and_metrics(tiny, digits):
    model_a, result_a = train_once(tiny, digits)
    model_b, result_b = train_once(tiny, digits)
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert result_a.history == result_b.history


def test_another_seed_gives_other_weights(tiny, digits):
    model_a, _ = train_once(tiny, digits)
    model_b, _ = train_once(dataclasses.replace(tiny, seed=tiny.seed + 1), digits)
    assert not np.array_equal(model_a.get_weights()[0], model_b.get_weights()[0])


def test_training_learns_and_times_each_epoch(tiny, digits):
    _, result = train_once(tiny, digits, epochs=3)
    assert result.epochs == 3 and len(result.history["val_accuracy"]) == 3
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.train_time_s == pytest.approx(result.first_epoch_s + result.rest_epochs_s)
    assert result.images_per_s > 0


@pytest.mark.parametrize("loss", ["crossentropy", "mse"])
def test_the_projects_input_pipeline_trains_exactly_like_fit_on_the_arrays(tiny, digits, loss):
    # 300 images in batches of 32: a partial last batch; mse: one-hot float targets.
    cfg = dataclasses.replace(tiny, loss=loss)
    images, labels = digits[0][:300, ..., None], digits[1][:300]
    project = new_cnn(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(project, (images, labels), None, epochs=3, batch_size=32)
    assert not [w for w in caught if "shuffle" in str(w.message)]  # Keras's "shuffle=True ... ignored"
    plain = new_cnn(cfg)
    plain.steps_per_execution = STEPS_PER_EXECUTION
    history = plain.fit(images, targets(plain, labels), batch_size=32, epochs=3, shuffle=True, verbose=0)
    for wa, wb in zip(project.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert result.history["loss"] == [float(v) for v in history.history["loss"]]


def test_on_tensorflow_the_training_data_is_a_pipeline_without_autotuning(tiny, digits):
    model = new_cnn(tiny)
    inputs = training_inputs(model, digits[0][:300, ..., None], digits[1][:300], 32)
    assert set(inputs) == {"x", "shuffle"} and inputs["shuffle"] is False  # the dataset shuffles itself
    assert inputs["x"].options().autotune.enabled is False
    assert int(inputs["x"].cardinality()) == 10  # ceil(300 / 32): Keras knows the steps per epoch
    batches = list(inputs["x"].as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [32] * 9 + [12]
    assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == sorted(digits[1][:300].tolist())


def test_augmented_batch_norm_model_trains(tiny, digits):
    cfg = dataclasses.replace(tiny, augment=True, batch_norm=True)
    _, result = train_once(cfg, digits, epochs=1)
    assert np.isfinite(result.history["loss"][0])


def test_kfold_picks_the_rounded_mean_best_epoch(tiny, digits):
    runtime.seed_everything(tiny.seed)
    result = select_epochs(tiny, KFoldParams(folds=2, max_epochs=3, patience=1), digits[0][:200], digits[1][:200],
                           log=lambda _: None)
    assert len(result["per_fold"]) == 2
    assert all(1 <= f["best_epoch"] <= f["epochs_run"] <= 3 for f in result["per_fold"])
    assert result["chosen_epochs"] == round_half_up(np.mean(result["best_epochs"]))


def test_kfold_rejects_more_folds_than_the_smallest_class(tiny, digits):
    with pytest.raises(DataError, match="kfold.folds is 50"):
        select_epochs(tiny, KFoldParams(folds=50, max_epochs=1, patience=1), digits[0][:100], digits[1][:100])


def test_resolve_epochs(tmp_path):
    params = load_params()
    kfold = tmp_path / "kfold.json"
    kfold.write_text(json.dumps({"chosen_epochs": 7}))
    assert resolve_epochs(params.train, params.train, kfold) == 7
    assert resolve_epochs(params.models["epochs_double"], params.train, kfold) == 14
    fixed = dataclasses.replace(params.train, epochs=5)
    assert resolve_epochs(fixed, fixed, tmp_path / "absent.json") == 5
    assert resolve_epochs(dataclasses.replace(fixed, epochs="2x"), fixed, tmp_path / "absent.json") == 10
    with pytest.raises(DataError, match=r"run `dvc repro kfold`"):
        resolve_epochs(params.train, params.train, tmp_path / "absent.json")
    kfold.write_text(json.dumps({"chosen_epochs": None, "skipped": "train.epochs is 5"}))
    with pytest.raises(DataError, match="no chosen epoch count"):
        resolve_epochs(params.train, params.train, kfold)


def test_round_half_up():
    assert [round_half_up(x) for x in (2.5, 3.5, 2.4, 0.5)] == [3, 4, 2, 1]


def test_the_same_weights_give_the_same_model_file(tmp_path):
    """Two models built apart from the same seed are saved to byte-identical .keras files (Keras
    itself writes the save time and Python object ids into them), and the file loads as before."""
    import time
    import zipfile

    from cnnstudy.model_files import load_model, save_model

    cfg = dataclasses.replace(load_params().train, filters=(4, 8), dense=(16,), batch_norm=True)
    files = []
    for i in range(2):
        keras.backend.clear_session()  # as in a stage's fresh process: layer and optimizer names restart
        runtime.seed_everything(7)
        model = compile_model(build_cnn(cfg), cfg.optimizer, cfg.lr)
        files.append(tmp_path / f"m{i}.keras")
        save_model(model, files[-1])
        time.sleep(1.1)  # Keras' date_saved has one-second resolution
    assert files[0].read_bytes() == files[1].read_bytes()
    with zipfile.ZipFile(files[0]) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert "date_saved" not in json.loads(archive.read("metadata.json"))
        assert '"shared_object_id": 1' in archive.read("config.json").decode()
    loaded = load_model(files[0], fix="retrain")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.count_params() == model.count_params() and loaded.optimizer is not None


def test_retraining_several_seeds_in_one_process_gives_each_seeds_own_file(tmp_path, tiny, digits):
    """The retrain stage trains every seed in one process; each file is byte for byte the one a
    process training that seed alone writes (no `adam_1`, no weights carried over)."""
    from types import SimpleNamespace

    from cnnstudy.model_files import save_model
    from cnnstudy.retraining import train_each_seed

    images, labels = digits
    data = SimpleNamespace(train=(images[:300], labels[:300]), val=(images[300:350], labels[300:350]),
                           test=(images[350:], labels[350:]), num_classes=10)
    seeds = {"baseline_seed3": 3, "baseline_seed4": 4}
    accuracies = train_each_seed(tiny, data, seeds, 1, tmp_path)
    assert sorted(accuracies) == sorted(seeds) and accuracies["baseline_seed4"]["seed"] == 4
    keras.backend.clear_session()
    model, _ = train_cnn(dataclasses.replace(tiny, seed=4), data.train, data.val, 1, name="baseline_seed4")
    save_model(model, tmp_path / "alone.keras")
    assert (tmp_path / "baseline_seed4.keras").read_bytes() == (tmp_path / "alone.keras").read_bytes()
    assert (tmp_path / "baseline_seed3.keras").read_bytes() != (tmp_path / "alone.keras").read_bytes()
