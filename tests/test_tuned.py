"""The tuned final model: the sweep's best config, epochs chosen on validation, refit on
train + validation, without the test split (unit tests and one tiny run of the real stage)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from cnnstudy.errors import DataError
from cnnstudy.params import PARAMS_FILE, REPO_ROOT, ParamsError, load_params, parse_params
from cnnstudy.tuned import best_config, best_epoch, config_changes, study_models, sweep_history, train_plus_val
from sweep_helpers import write_prepared


def test_best_config_is_train_with_the_sweeps_best_values():
    train = load_params().train
    cfg = best_config({"best": {"config": {"optimizer": "nadam", "lr": 0.003, "batch_norm": True,
                                           "filters": [16, 32]}}}, train, "metrics/sweep.json")
    assert (cfg.optimizer, cfg.lr, cfg.batch_norm, cfg.filters) == ("nadam", 0.003, True, (16, 32))
    assert cfg.dense == train.dense and cfg.seed == train.seed
    assert config_changes(cfg, train) == {"optimizer": "nadam", "lr": 0.003, "batch_norm": True, "filters": [16, 32]}


@pytest.mark.parametrize("summary, match", [
    ({"best": None}, r"metrics/sweep\.json: has no best\.config"),
    ([], r"metrics/sweep\.json: has no best\.config"),
    ({"best": {"config": {"colour": 1}}}, r"metrics/sweep\.json: best\.config\.colour is not a key of train"),
    ({"best": {"config": {"lr": -1}}}, r"metrics/sweep\.json: best\.config\.lr: expected a number > 0"),
])
def test_a_broken_sweep_summary_is_named(summary, match):
    with pytest.raises(DataError, match=match):
        best_config(summary, load_params().train, "metrics/sweep.json")


def test_best_epoch_is_the_lowest_validation_loss_over_three_epochs():
    # A one-epoch dip (epoch 3) loses to the settled stretch around epoch 6.
    assert best_epoch({"val_loss": [0.9, 0.5, 0.30, 0.6, 0.33, 0.32, 0.33, 0.40]}) == 6
    assert best_epoch({"val_loss": [1, 0.5, 0.25, 0.25, 0.5, 0.25, 0.25, 1]}) == 3  # ties: the earlier
    assert best_epoch({"val_loss": [0.5, 0.4, 0.3, 0.2]}) == 4  # at the end the window is two epochs
    assert best_epoch({"val_loss": [0.7]}) == 1
    assert best_epoch({"val_loss": [0.4, float("nan"), 0.5, 0.3, 0.3]}) == 5  # a NaN never wins
    with pytest.raises(ValueError):
        best_epoch({"loss": [1.0]})


def test_sweep_history_is_the_best_trials_curves():
    curves = {"val_loss_curve": [0.3, 0.2], "val_accuracy_curve": [0.9, 0.95]}
    assert sweep_history({"best": {"config": {}, **curves}}, "m/sweep.json") == {"val_loss": [0.3, 0.2],
                                                                                 "val_accuracy": [0.9, 0.95]}
    with pytest.raises(DataError, match=r"m/sweep\.json: best has no val_loss_curve.*--force sweep"):
        sweep_history({"best": {"config": {}, "val_loss_curve": [0.3]}}, "m/sweep.json")
    with pytest.raises(DataError, match="best has no val_loss_curve"):
        sweep_history({"best": None}, "m/sweep.json")


def test_train_plus_val_keeps_every_image_once():
    images, labels = np.arange(10 * 4).reshape(10, 2, 2), np.arange(10)
    x, y = train_plus_val((images[:7], labels[:7]), (images[7:], labels[7:]))
    assert x.shape == (10, 2, 2) and list(y) == list(range(10))


@pytest.mark.parametrize("change, match", [
    ({"select": "test"}, r"tuned\.select: expected one of sweep, validation, fixed"),
    ({"epochs": 0}, r"tuned\.epochs: expected an integer >= 1"),
    ({"patience": 3}, r"unknown key tuned\.patience"),
])
def test_tuned_section_is_validated(change, match):
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["tuned"].update(change)
    with pytest.raises(ParamsError, match=match):
        parse_params(raw)


def test_tuned_is_not_a_variant_name():
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["variants"]["tuned"] = {"lr": 0.01}
    with pytest.raises(ParamsError, match=r"variants\.tuned: the name 'tuned' is the tuned model's"):
        parse_params(raw)


def test_the_stage_refits_on_train_and_val_with_epochs_from_validation(tmp_path, digits):
    """The real stage in a tiny copy: no test.npz exists, so reading the test split would fail."""
    images, labels = digits
    write_prepared(tmp_path / "data" / "prepared", images, labels)
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["train"].update(filters=[4, 8], dense=[16], batch_size=32, device="cpu", precision="float32")
    raw["prepare"]["per_class"] = 36
    raw["tuned"] = {"select": "validation", "epochs": 3}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "sweep_best.json").write_text(json.dumps(
        {"best": {"config": {"lr": 0.01, "lr_schedule": "cosine", "batch_norm": True}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "tuned.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "models" / "tuned.keras").is_file()
    trained = json.loads((tmp_path / "metrics" / "train" / "tuned.json").read_text())
    chosen = trained["epoch_selection"]["chosen_epochs"]
    losses = trained["epoch_selection"]["val_loss"]
    assert len(losses) == 3 and chosen == best_epoch({"val_loss": losses})
    assert trained["epochs"] == chosen  # the refit ran the chosen epochs
    assert trained["config"] == {"lr": 0.01, "lr_schedule": "cosine", "batch_norm": True, "epochs": chosen}
    assert trained["val_accuracy"] is None  # the refit has no validation split left: it trained on it
    assert not (tmp_path / "data" / "prepared" / "test.npz").exists()


def test_study_models_add_the_tuned_model_once_it_has_run(tmp_path):
    params = load_params()
    assert list(study_models(params.models, params.train, tmp_path)) == list(params.models)
    (tmp_path / "tuned.json").write_text(json.dumps({"config": {"batch_norm": True, "epochs": 17}}))
    models = study_models(params.models, params.train, tmp_path)
    assert list(models) == [*params.models, "tuned"]
    assert models["tuned"].batch_norm and models["tuned"].epochs == 17 and models["tuned"].lr == params.train.lr
    (tmp_path / "tuned.json").write_text(json.dumps({"model": "tuned"}))
    with pytest.raises(DataError, match=r"tuned\.json: has no 'config' mapping"):
        study_models(params.models, params.train, tmp_path)
    (tmp_path / "tuned.json").write_text(json.dumps({"config": {"lr": -1}}))
    with pytest.raises(DataError, match=r"tuned\.json: config\.lr: expected a number > 0.*dvc repro --force tuned`$"):
        study_models(params.models, params.train, tmp_path)
