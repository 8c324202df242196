"""Asking a model the same thing repeatedly: in inference mode (must answer identically), with
only its Dropout layers in training mode (MC dropout, answers vary), and across models
trained on the same data (how far they agree).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnstudy.errors import StudyError

TOP_K = 3


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis (0 .. ln 10 = 2.303 for 10 classes)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=-1)


def top_k(probabilities: np.ndarray, k: int = TOP_K) -> list[tuple[int, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(c), float(probabilities[c])) for c in order]


def chain_layers(model) -> list:
    """The layers of a linear-chain model in call order (without the InputLayer).

    MC dropout calls them one by one, so the chain must really be a chain: each
    layer's input is the previous layer's output.
    """
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0] if len(model.inputs) == 1 else None
    try:
        for layer in layers:
            if previous is None or layer.input is not previous:
                raise ValueError(layer.name)
            previous = layer.output
        if len(model.outputs) != 1 or previous is not model.outputs[0]:
            raise ValueError("output")
    except (AttributeError, ValueError) as exc:
        raise StudyError(f"model {model.name!r} is not a linear chain of layers (at {exc}); "
                         "MC dropout needs one") from None
    return layers


def mc_dropout_proba(model, images: np.ndarray, seed: int, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities with ONLY the Dropout layers in training mode.

    BatchNormalization keeps its moving statistics and the augmentation layers stay
    off: the layers are called in order, each with training=isinstance(layer, Dropout).
    Reproducible: the global seed and every Dropout layer's seed generator are set
    from `seed` (the generators' state is restored afterwards).
    """
    import keras

    from cnnstudy.training import as_model_input

    layers = chain_layers(model)
    generators = [layer.seed_generator for layer in layers
                  if isinstance(layer, keras.layers.Dropout) and getattr(layer, "seed_generator", None) is not None]
    saved = [np.array(g.state.numpy()) for g in generators]
    keras.utils.set_random_seed(seed)
    for index, generator in enumerate(generators):
        generator.state.assign(np.array([seed, index * 1_000_003], dtype=saved[index].dtype))
    x_all = as_model_input(np.asarray(images)).astype("float32")
    try:
        out = []
        for start in range(0, len(x_all), batch_size):
            x = keras.ops.convert_to_tensor(x_all[start:start + batch_size])
            for layer in layers:
                x = layer(x, training=isinstance(layer, keras.layers.Dropout))
            out.append(np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64))
    finally:
        for generator, state in zip(generators, saved):
            generator.state.assign(state)
    return np.concatenate(out) if out else np.zeros((0, model.outputs[0].shape[-1]))


def inference_repeats(model, images: np.ndarray, repeats: int) -> np.ndarray:
    """(repeats, N, classes): the same images through predict, `repeats` times."""
    from cnnstudy.evaluation import predict_proba

    return np.stack([predict_proba(model, images) for _ in range(repeats)])


def mc_dropout_repeats(model, images: np.ndarray, repeats: int, seed: int) -> np.ndarray:
    """(repeats, N, classes): MC-dropout passes with seeds seed, seed+1, ..."""
    return np.stack([mc_dropout_proba(model, images, seed + r) for r in range(repeats)])


def max_abs_difference(samples: np.ndarray) -> float:
    """Largest |p_r - p_0| over repeats r, images and classes (0.0: identical vectors)."""
    samples = np.asarray(samples)
    return float(np.max(np.abs(samples - samples[:1]))) if samples.size else 0.0


def dropout_rate(model) -> float:
    import keras

    rates = [float(layer.rate) for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    return max(rates, default=0.0)


@dataclass
class ModelQueries:
    """Everything asked of one model: outliers (N) and the in-distribution test split (M)."""

    name: str
    dropout: float
    inference_out: np.ndarray   # (N, C)
    inference_in: np.ndarray    # (M, C)
    repeats_out: np.ndarray     # (R, N, C) setting (a)
    mc_out: np.ndarray          # (R, N, C) setting (b)
    mc_in: np.ndarray           # (R, M, C)
    test_accuracy: float | None = None
    extra: dict = field(default_factory=dict)


def query_model(model, name: str, outliers: np.ndarray, test_images: np.ndarray, repeats: int,
                seed: int, test_labels: np.ndarray | None = None) -> ModelQueries:
    from cnnstudy.evaluation import predict_proba

    repeats_out = inference_repeats(model, outliers, repeats)
    inference_in = predict_proba(model, test_images)
    both = np.concatenate([outliers, test_images])
    mc = mc_dropout_repeats(model, both, repeats, seed)
    accuracy = None if test_labels is None else float(np.mean(inference_in.argmax(1) == test_labels))
    return ModelQueries(name=name, dropout=dropout_rate(model), inference_out=repeats_out[0],
                        inference_in=inference_in, repeats_out=repeats_out, mc_out=mc[:, :len(outliers)],
                        mc_in=mc[:, len(outliers):], test_accuracy=accuracy,
                        extra=energy_scores(model, test_images, outliers))


def energy_scores(model, test_images: np.ndarray, outliers: np.ndarray) -> dict:
    """{"energy": (test-split scores, outlier scores)}: the negative energy of the exact logits
    (ood_stats.logits), or {} for a model without a softmax head to read them from."""
    from cnnstudy.ood_stats import logits, negative_energy

    try:
        return {"energy": (negative_energy(logits(model, test_images)), negative_energy(logits(model, outliers)))}
    except ValueError:
        return {}


def mc_spread(mc: np.ndarray, inference: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: how much MC-dropout answers vary, against the inference-mode answer."""
    max_prob = mc.max(axis=-1)                          # (R, N)
    classes = mc.argmax(axis=-1)                        # (R, N)
    reference = inference.argmax(axis=-1)               # (N,)
    return {
        "std_max_prob": max_prob.std(axis=0),
        "class_changes": (classes != reference).sum(axis=0),  # repeats whose class differs from inference mode
        "distinct_classes": np.array([len(set(column)) for column in classes.T]),
        "max_abs_diff": np.abs(mc - mc[:1]).max(axis=(0, 2)) if mc.size else np.zeros(0),
    }


def model_agreement(predictions: dict[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Per image: the share of the other models predicting the reference model's class,
    and the number of distinct classes over all models."""
    ref = predictions[reference]
    others = [p for name, p in predictions.items() if name != reference]
    stacked = np.stack(list(predictions.values()))
    return {
        "agreement": np.mean([p == ref for p in others], axis=0) if others else np.ones(len(ref)),
        "distinct_classes": np.array([len(set(column)) for column in stacked.T]),
    }
