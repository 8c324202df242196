"""Inspection: kernels, block activations, mistakes, layer table, confusion statistics,
and integrated-gradient saliency on the TensorFlow and JAX backends."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnstudy import runtime

runtime.select_device("cpu")

import keras  # noqa: E402

from cnnstudy import inspection as I  # noqa: E402
from cnnstudy import saliency as S  # noqa: E402
from cnnstudy.models import build_cnn  # noqa: E402
from cnnstudy.params import REPO_ROOT  # noqa: E402
from cnnstudy.standard_models import build_standard  # noqa: E402
from cnnstudy.train_cnn import train_cnn  # noqa: E402


@pytest.fixture(scope="module")
def trained(digits, tiny):
    """A tiny CNN with BatchNorm, one epoch on 300 digits."""
    cfg = dataclasses.replace(tiny, batch_norm=True, epochs=1)
    images, labels = digits
    model, _ = train_cnn(cfg, (images[:300], labels[:300]), None, 1)
    return model


# ------------------------------------------------------------------ kernels
def test_first_layer_filters_are_the_conv1_kernels(trained):
    kernel = np.asarray(trained.get_layer("conv1").kernel.numpy())  # (3, 3, 1, 4)
    filters = I.first_layer_filters(trained)
    assert filters.shape == (4, 3, 3)
    np.testing.assert_allclose(filters[2], kernel[:, :, 0, 2])


def test_first_layer_filters_sum_replicated_input_channels():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 3, name="c")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.arange(3 * 3 * 3 * 2, dtype="float32").reshape(3, 3, 3, 2)
    conv.kernel.assign(kernel)
    np.testing.assert_allclose(I.first_layer_filters(model)[1], kernel[..., 1].sum(axis=2))


def test_kernel_summary_finds_the_one_shared_pattern():
    """Every 3x3 kernel a multiple of one pattern: one component explains all variance."""
    inputs = keras.Input((8, 8, 4))
    conv = keras.layers.Conv2D(5, 3, use_bias=False, name="deep")
    keras.Model(inputs, conv(inputs))
    pattern = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)  # Sobel x
    scale = np.random.default_rng(0).normal(size=(4, 5))
    conv.kernel.assign((pattern[:, :, None, None] * scale[None, None]).astype("float32"))
    summary = I.kernel_summary(conv)
    assert summary.shape == (3, 3, 4, 5)
    np.testing.assert_allclose(summary.strength, np.abs(scale) * np.abs(pattern).mean(), rtol=1e-5)
    assert summary.explained[0] > 0.999
    first = summary.components[0] / np.linalg.norm(summary.components[0])
    assert abs(float((first * pattern).sum() / np.linalg.norm(pattern))) == pytest.approx(1.0, abs=1e-5)


def test_deeper_kernels_of_a_deep_model_are_a_sample_through_its_depth():
    """A model with 12 deeper conv layers shows 8, evenly spaced, first and last included; a
    shallow one shows all of them."""
    x = inputs = keras.Input((8, 8, 1))
    for i in range(13):
        x = keras.layers.Conv2D(2, 3, padding="same", name=f"c{i}")(x)
    deep = keras.Model(inputs, x)
    shown = [s.layer for s in I.deeper_kernel_summaries(deep)]
    assert shown == ["c1", "c3", "c4", "c6", "c7", "c9", "c10", "c12"]
    assert [s.layer for s in I.deeper_kernel_summaries(deep, limit=20)] == [f"c{i}" for i in range(1, 13)]


# ------------------------------------------------------------------ activations
def test_feature_maps_of_every_block(trained, digits):
    images, _ = digits
    maps = I.feature_maps(trained, images[:3])
    assert [name for name, _ in maps] == ["relu1", "relu2"]  # after BatchNorm and ReLU, before pooling
    assert maps[0][1].shape == (3, 28, 28, 4) and maps[1][1].shape == (3, 14, 14, 8)
    assert maps[0][1].min() >= 0.0 and maps[0][1].max() > 0.0  # ReLU outputs, not all dead
    direct = keras.Model(trained.inputs, trained.get_layer("relu2").output).predict_on_batch(images[:3, ..., None])
    np.testing.assert_allclose(maps[1][1], direct, rtol=1e-5, atol=1e-6)


def test_feature_maps_lenet5_blocks_end_at_pooling():
    names = [name for name, _ in I.block_outputs(build_standard("lenet5"))]
    assert names == ["c1", "c3", "c5"]


def test_branched_model_falls_back_to_conv_outputs():
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(2, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(2, 3, padding="same", name="b")(a)
    model = keras.Model(inputs, keras.layers.Add()([a, b]))
    assert [name for name, _ in I.block_outputs(model)] == ["a", "b"]


def test_one_per_class():
    labels = np.array([3, 1, 1, 0, 3, 2])
    assert I.one_per_class(labels, 5) == [3, 1, 5, 0]  # class 4 absent


# ------------------------------------------------------------------ errors and tables
def test_mistakes_most_confident_first():
    labels = np.array([0, 1, 2, 3, 4])
    probabilities = np.full((5, 5), 0.05)
    probabilities[1, 2], probabilities[3, 0], probabilities[4, 4] = 0.6, 0.9, 0.8
    predicted = probabilities.argmax(1)  # 0 (right), 2, 0, 0, 4 (right)
    found = I.mistakes(labels, predicted, probabilities)
    assert [(m.index, m.true, m.predicted) for m in found] == [(3, 3, 0), (1, 1, 2), (2, 2, 0)]
    assert [m.confidence for m in found] == pytest.approx([0.9, 0.6, 0.05])
    only_classes = I.mistakes(labels, predicted)
    assert [m.index for m in only_classes] == [1, 2, 3] and np.isnan(only_classes[0].confidence)


def test_layer_table_adds_up(trained):
    rows = I.layer_table(trained)
    assert sum(r["parameters"] for r in rows) == trained.count_params()
    conv1 = next(r for r in rows if r["layer"] == "conv1")
    assert conv1 == {"layer": "conv1", "type": "Conv2D", "output_shape": (None, 28, 28, 4), "parameters": 40}


def test_recall_and_confused_pairs():
    matrix = np.diag([10, 9, 8]).astype(int)
    matrix[2, 1], matrix[0, 2], matrix[1, 0] = 6, 1, 6
    recall = I.per_class_recall({"m": matrix})["m"]
    np.testing.assert_allclose(recall, [10 / 11, 9 / 15, 8 / 14])
    pairs = I.confused_pairs(matrix)
    assert pairs == [(1, 0, 6), (2, 1, 6), (0, 2, 1)]
    names = ("zero", "one", "7")
    assert I.describe_pair(2, 1, 6, names) == "predicts 7 as one six times"
    assert I.describe_pair(0, 2, 1, names) == "predicts zero as 7 once"
    assert I.times(23) == "23 times"
    across = I.confused_across_models({"a": matrix, "b": matrix * 2})
    assert across[0] == {"true": 1, "predicted": 0, "total": 18, "per_model": {"a": 6, "b": 12}}
    assert np.isnan(I.per_class_recall({"m": np.zeros((2, 2))})["m"]).all()


# ------------------------------------------------------------------ saliency
def test_integrated_gradients_completeness(trained, digits):
    images, labels = digits
    attributions = S.integrated_gradients(trained, images[:4], labels[:4])
    assert attributions.shape == (4, 28, 28)
    assert np.all(attributions[images[:4] == 0] == 0)  # a pixel equal to the black baseline gets nothing
    gap = S.completeness_gap(trained, images[:4], labels[:4], attributions)
    from cnnstudy.evaluation import predict_proba

    change = predict_proba(trained, images[:4])[np.arange(4), labels[:4]] \
        - predict_proba(trained, np.zeros_like(images[:4]))[np.arange(4), labels[:4]]
    assert np.all(np.abs(gap) <= 0.02 * np.abs(change) + 1e-4)
    coarse = S.integrated_gradients(trained, images[:1], labels[:1], steps=1)  # one midpoint: not complete
    assert not np.allclose(coarse, attributions[:1], atol=1e-6)


def _eager_gradients(model, x, classes):
    import tensorflow as tf

    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        picked = tf.reduce_sum(model(inputs, training=False) * tf.one_hot(classes, 10))
    return tape.gradient(picked, inputs).numpy()


def _assert_same_gradients(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())


def test_compiled_gradients_are_the_models_own(trained, digits, tiny):
    """input_gradients compiles one function per model: it must give that model's gradients,
    a second model must not get the first's function, and weights set afterwards count."""
    images, labels = digits
    x, y = images[:5, ..., None].astype("float32"), labels[:5]
    first = S.input_gradients(trained, x, y)
    _assert_same_gradients(first, _eager_gradients(trained, x, y))
    other = build_cnn(dataclasses.replace(tiny, batch_norm=True))  # same layers, untrained weights
    untrained = S.input_gradients(other, x, y)
    _assert_same_gradients(untrained, _eager_gradients(other, x, y))
    assert not np.allclose(untrained, first, rtol=1e-2)
    other.set_weights(trained.get_weights())  # after its function was compiled
    _assert_same_gradients(S.input_gradients(other, x, y), first)


JAX_SCRIPT = """
import json, sys
import numpy as np
from cnnstudy import runtime
runtime.select_device("cpu")
import keras
from cnnstudy import saliency
assert keras.backend.backend() == "jax", keras.backend.backend()
model = keras.models.load_model(sys.argv[1], compile=False)
images = np.load(sys.argv[2])
np.save(sys.argv[3], saliency.integrated_gradients(model, images["x"], images["y"]))
"""


def test_integrated_gradients_same_on_jax(trained, digits, tmp_path):
    pytest.importorskip("jax")
    images, labels = digits
    trained.save(tmp_path / "m.keras")
    np.savez(tmp_path / "in.npz", x=images[:3], y=labels[:3])
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "m.keras"), str(tmp_path / "in.npz"),
                           str(tmp_path / "jax.npy")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    on_jax = np.load(tmp_path / "jax.npy")
    on_tf = S.integrated_gradients(trained, images[:3], labels[:3])
    assert np.abs(on_tf).max() > 1e-4
    np.testing.assert_allclose(on_jax, on_tf, atol=1e-6 * np.abs(on_tf).max() + 1e-9, rtol=1e-3)
    json.dumps(on_jax.tolist())  # plain floats


def test_saliency_refuses_an_unknown_backend(monkeypatch, trained):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(Exception, match="no gradient function for the 'numpy'"):
        S.input_gradients(trained, np.zeros((1, 28, 28, 1)), 0)
