"""The knobs of `train` beyond layer sizes: optimizers with momentum, losses on the softmax outputs,
activations, several dense layers, learning-rate schedules, early stopping (tiny models, real Keras)."""

import dataclasses

import numpy as np
import pytest

from cnnstudy import runtime, sizes

runtime.select_device("cpu")

import keras  # noqa: E402

from cnnstudy.models import build_cnn  # noqa: E402
from cnnstudy.train_cnn import learning_rate, new_cnn, schedule_callbacks, train_cnn  # noqa: E402
from cnnstudy.training import OPTIMIZERS, compile_model  # noqa: E402


def split(digits, n=320):
    return (digits[0][:n], digits[1][:n]), (digits[0][n:], digits[1][n:])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_in_params_is_in_the_table(tiny, name):
    model = compile_model(build_cnn(tiny), name, 0.01)
    assert type(model.optimizer).__name__.lower() == name
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_momentum_and_nesterov_reach_sgd_and_only_what_has_them(tiny):
    sgd = new_cnn(dataclasses.replace(tiny, optimizer="sgd", momentum=0.9, nesterov=True))
    assert sgd.optimizer.momentum == pytest.approx(0.9) and sgd.optimizer.nesterov is True
    rms = new_cnn(dataclasses.replace(tiny, optimizer="rmsprop", momentum=0.5))
    assert rms.optimizer.momentum == pytest.approx(0.5)
    plain = new_cnn(tiny)  # the baseline's Adam: exactly Keras' defaults
    assert plain.optimizer.get_config() == keras.optimizers.Adam(learning_rate=tiny.lr).get_config() | {
        "name": plain.optimizer.name}


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_mse_and_mae_train_on_one_hot_targets_and_report_accuracy(tiny, digits, loss):
    cfg = dataclasses.replace(tiny, loss=loss, lr=0.01)
    train, val = split(digits)
    model, result = train_cnn(cfg, train, val, 3)
    assert model.loss == {"mse": "mean_squared_error", "mae": "mean_absolute_error"}[loss]
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # an MSE/MAE between a softmax and a one-hot vector is bounded: 0..2/10 and 0..2/10
    assert 0 <= result.history["loss"][-1] <= 0.2
    assert result.history["loss"][-1] < result.history["loss"][0]  # it learns


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "tanh", "sigmoid"])
def test_activation_is_used_in_conv_blocks_and_dense_layers(tiny, activation):
    model = build_cnn(dataclasses.replace(tiny, activation=activation, dense=(16, 8)))
    acts = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert [a.name for a in acts] == [f"{activation}1", f"{activation}2"]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [16, 8, 10]
    assert [d.get_config()["activation"] for d in dense[:2]] == [activation, activation]
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == ["dropout", "dropout2"]
    assert model.count_params() == sum(sizes.parameter_counts((4, 8), tiny.kernel_size, (16, 8), False))


def test_cosine_schedule_warms_up_then_decays_to_zero(tiny):
    schedule = learning_rate(dataclasses.replace(tiny, lr_schedule="cosine", lr=0.003), steps=(10, 5))
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(10)) == pytest.approx(0.003)  # peak after one epoch of warm-up
    assert float(schedule(30)) < 0.003 and float(schedule(50)) == pytest.approx(0.0, abs=1e-9)
    short = learning_rate(dataclasses.replace(tiny, lr_schedule="cosine", lr=0.003), steps=(10, 2))
    assert float(short(0)) == pytest.approx(0.003)  # no warm-up in a 2-epoch fit
    assert learning_rate(tiny, steps=(10, 5)) == tiny.lr  # constant: a plain number


def test_plateau_and_early_stopping_watch_validation_else_training_loss(tiny):
    cfg = dataclasses.replace(tiny, lr_schedule="plateau", early_stopping=3)
    with_val = schedule_callbacks(cfg, validated=True)
    assert [type(c).__name__ for c in with_val] == ["ReduceLROnPlateau", "EarlyStopping"]
    assert all(c.monitor == "val_loss" for c in with_val)
    assert all(c.monitor == "loss" for c in schedule_callbacks(cfg, validated=False))
    assert schedule_callbacks(tiny, validated=True) == []  # the baseline: neither


def test_early_stopping_ends_a_run_that_stops_improving(tiny, digits):
    # lr 0.5 with SGD diverges or stalls at once: validation loss stops improving
    cfg = dataclasses.replace(tiny, optimizer="sgd", lr=0.5, early_stopping=1)
    train, val = split(digits)
    _, result = train_cnn(cfg, train, val, 12)
    assert result.epochs < 12
    losses = np.array(result.history["val_loss"])
    assert not np.all(np.diff(losses) < 0)
