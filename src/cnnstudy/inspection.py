"""What a trained network learned and where it fails: numbers only, no figures.

Everything here takes a Keras model (or its predictions, or confusion matrices) and
returns arrays, rows or dicts; figures/inspect.py draws them. Keras API only, so it
runs on every backend (the one backend-specific part, input gradients, is in
saliency.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cnnstudy.errors import StudyError

# Layers that close a conv block: the activation just before one of these (or the
# flatten) is what the block passes on. Named by class so keras.applications models match.
BLOCK_ENDS = ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
              "Flatten", "Conv2D", "Dense")
PCA_COMPONENTS = 3
MAX_DEEPER_LAYERS = 8      # rows of the deeper-kernels figure


# ------------------------------------------------------------------ kernels
def conv_layers(model) -> list:
    """Every Conv2D layer, in the order model.layers lists them (call order for a chain)."""
    import keras

    found = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.Conv2D)]
    if not found:
        raise StudyError(f"model {model.name!r} has no Conv2D layer to inspect")
    return found


def _all_layers(model) -> list:
    """Layers with nested models (e.g. a keras.applications backbone) expanded."""
    import keras

    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def kernel_array(layer) -> np.ndarray:
    """The kernel as float64 (kh, kw, in, out)."""
    return np.asarray(layer.kernel.numpy() if hasattr(layer.kernel, "numpy") else layer.kernel, dtype=np.float64)


def first_layer_filters(model) -> np.ndarray:
    """(filters, kh, kw): the first conv layer's kernels, one 2-D image per output channel.

    With several input channels (the standard models see the grey digit replicated
    into RGB) the channels are summed: on identical inputs that is the kernel that acts.
    """
    kernel = kernel_array(conv_layers(model)[0])
    return np.transpose(kernel.sum(axis=2), (2, 0, 1))


@dataclass(frozen=True)
class KernelSummary:
    """A deeper conv layer in two views that keep its structure visible."""

    layer: str
    shape: tuple[int, int, int, int]   # (kh, kw, in, out)
    strength: np.ndarray               # (in, out): mean |weight| of each input->output kernel
    components: np.ndarray             # (k, kh, kw): principal components of all its 2-D kernels
    explained: np.ndarray              # (k,): share of the kernels' variance each component explains


def kernel_summary(layer, components: int = PCA_COMPONENTS) -> KernelSummary:
    kernel = kernel_array(layer)
    kh, kw, cin, cout = kernel.shape
    strength = np.abs(kernel).mean(axis=(0, 1))
    # Each (input, output) pair is one kh x kw kernel: PCA over those in*out samples.
    samples = kernel.reshape(kh * kw, cin * cout).T
    centred = samples - samples.mean(axis=0)
    k = min(components, kh * kw, len(samples))
    if kh * kw == 1 or not np.any(centred):
        comps, explained = np.zeros((k, kh, kw)), np.zeros(k)
    else:
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        variance = singular ** 2
        comps = vt[:k].reshape(k, kh, kw)
        explained = variance[:k] / variance.sum()
    return KernelSummary(layer.name, (kh, kw, cin, cout), strength, comps, explained)


def deeper_kernel_summaries(model, limit: int = MAX_DEEPER_LAYERS) -> list[KernelSummary]:
    """The conv layers after the first, at most `limit` of them, evenly spaced in depth (the
    first and the last included): DenseNet121 has 119, and a figure row for each made a
    300-inch, 10 MB image that took a minute to lay out."""
    layers = conv_layers(model)[1:]
    if len(layers) > limit:
        picks = np.unique(np.round(np.linspace(0, len(layers) - 1, limit)).astype(int))
        layers = [layers[i] for i in picks]
    return [kernel_summary(layer) for layer in layers]


# ------------------------------------------------------------------ activations
def block_outputs(model) -> list[tuple[str, object]]:
    """(layer name, output tensor) of every conv block: for each Conv2D, the last layer
    after it (BatchNorm, activation) before the next pooling, conv, flatten or dense layer.

    Needs a model whose layers run one after another (the study's CNN, LeNet-5); for
    a branched model (ResNet) it falls back to the Conv2D outputs themselves.
    """
    import keras

    from cnnstudy.queries import chain_layers

    try:
        layers = chain_layers(model)
    except StudyError:
        return [(layer.name, layer.output) for layer in conv_layers(model)]
    outputs, current = [], None
    for layer in layers:
        if current is not None and type(layer).__name__ in BLOCK_ENDS:
            outputs.append((current.name, current.output))
            current = None
        if isinstance(layer, keras.layers.Conv2D) or current is not None:
            current = layer  # the conv, then its BatchNorm / activation
    if current is not None:
        outputs.append((current.name, current.output))
    return outputs


def activation_model(model):
    """A Keras model from the same input to the output of every conv block; its
    block_names attribute lists the blocks' layer names."""
    import keras

    blocks = block_outputs(model)
    sub = keras.Model(model.inputs, [tensor for _, tensor in blocks], name=f"{model.name}_blocks")
    sub.block_names = [name for name, _ in blocks]
    return sub


def feature_maps(model, images: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """[(block's last layer name, (N, H, W, C) float32)] for `images` (N, 28, 28) uint8,
    inference mode."""
    from cnnstudy.training import as_model_input

    sub = activation_model(model)
    result = sub.predict_on_batch(as_model_input(np.asarray(images)))
    result = result if isinstance(result, (list, tuple)) else [result]
    return [(name, np.asarray(a, dtype=np.float32)) for name, a in zip(sub.block_names, result)]


def one_per_class(labels: np.ndarray, num_classes: int) -> list[int]:
    """Index of the first image of each class (the splits are shuffled: a random pick)."""
    found = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members):
            found.append(int(members[0]))
    return found


# ------------------------------------------------------------------ errors
@dataclass(frozen=True)
class Mistake:
    index: int          # position in the test split
    true: int
    predicted: int
    confidence: float   # the probability of the predicted class (nan when only classes are known)


def mistakes(labels: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None = None) -> list[Mistake]:
    """Every misclassified image, most confident first (ties: test-split order)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape:
        raise ValueError(f"{len(labels)} labels but {len(predicted)} predictions")
    wrong = np.flatnonzero(labels != predicted)
    if probabilities is None:
        conf = np.full(len(wrong), np.nan)
    else:
        conf = np.asarray(probabilities)[wrong, predicted[wrong]]
    order = np.argsort(-np.nan_to_num(conf, nan=-1.0), kind="stable")
    return [Mistake(int(wrong[i]), int(labels[wrong[i]]), int(predicted[wrong[i]]), float(conf[i])) for i in order]


# ------------------------------------------------------------------ layer table
def layer_table(model) -> list[dict]:
    """One row per layer: name, type, output shape (batch dimension as None), parameters."""
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "output_shape": shape, "parameters": int(layer.count_params())})
    return rows


# ------------------------------------------------------------------ confusion matrices
def per_class_recall(confusions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Model -> recall per true class (row-normalised diagonal); nan for a class never seen."""
    out = {}
    for name, matrix in confusions.items():
        m = np.asarray(matrix, dtype=np.float64)
        totals = m.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(totals > 0, np.diag(m) / totals, np.nan)
    return out


def confused_pairs(matrix: np.ndarray, top: int | None = 5) -> list[tuple[int, int, int]]:
    """(true, predicted, count) off the diagonal, most frequent first (ties: true, predicted)."""
    m = np.asarray(matrix)
    pairs = [(int(t), int(p), int(m[t, p])) for t in range(m.shape[0]) for p in range(m.shape[1])
             if t != p and m[t, p] > 0]
    pairs.sort(key=lambda x: (-x[2], x[0], x[1]))
    return pairs if top is None else pairs[:top]


NUMBER_WORDS = ("no", "once", "twice", "three times", "four times", "five times", "six times", "seven times",
                "eight times", "nine times", "ten times")


def times(count: int) -> str:
    return NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else f"{count} times"


def describe_pair(true: int, predicted: int, count: int, class_names: Sequence[str]) -> str:
    """"predicts 7 as 9 six times"."""
    return f"predicts {class_names[true]} as {class_names[predicted]} {times(count)}"


def confused_across_models(confusions: dict[str, np.ndarray], top: int = 10) -> list[dict]:
    """The most confused pairs summed over models, with each model's own count."""
    total = sum(np.asarray(m, dtype=np.int64) for m in confusions.values())
    return [{"true": t, "predicted": p, "total": c,
             "per_model": {name: int(np.asarray(m)[t, p]) for name, m in confusions.items()}}
            for t, p, c in confused_pairs(total, top)]
