"""Saliency by integrated gradients (Sundararajan, Taly & Yan 2017), on TensorFlow and JAX.

Why integrated gradients and not Grad-CAM: Grad-CAM's map has the resolution of the
last conv block, 3x3 for the study's CNN after three 2x2 poolings, far too coarse for
a 28x28 digit; integrated gradients attribute at input resolution, need no choice of
layer (the same code serves LeNet-5 and DenseNet), and are checkable: the attributions
sum to f(x) - f(baseline) (completeness), which the tests verify.

What is explained: the probability the model gives one class (its softmax output),
against a black image, which is MNIST's background, so "what made it so sure".

Keras 3 has no backend-neutral gradient, so `input_gradients` holds one small function
per backend: tf.GradientTape, jax.grad (and torch autograd).
"""

from __future__ import annotations

import numpy as np

from cnnstudy.errors import StudyError

STEPS = 64          # Riemann steps; completeness error < 1% of |f(x) - f(0)| on the study's models
CHUNK = 256         # interpolated images per gradient call


_COMPILED: dict = {}


def _compiled(model, build):
    """The gradient function `build()` compiles for `model`, built on its first call. Un-compiled,
    each call runs the model op by op (TensorFlow eager: 2-3x slower) or re-traces it (jax).
    One model at a time (the stage inspects them one after another); the entry holds the
    model, so its id cannot pass to a new one."""
    key = (id(model), build.__qualname__)
    if key not in _COMPILED:
        _COMPILED.clear()
        _COMPILED[key] = (model, build())
    return _COMPILED[key][1]


def _tensorflow_gradients(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    def build():
        @tf.function(reduce_retracing=True)
        def gradient(inputs, one_hot):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                picked = tf.reduce_sum(tf.cast(model(inputs, training=False), tf.float32) * one_hot)
            return tape.gradient(picked, inputs)
        return gradient

    one_hot = tf.one_hot(classes, int(model.outputs[0].shape[-1]), dtype=tf.float32)
    return _compiled(model, build)(tf.convert_to_tensor(x), one_hot).numpy()


def _jax_gradients(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    def build():
        def picked(inputs, trainable, non_trainable, one_hot):
            # stateless_call: the weights are explicit arguments, so jax traces a pure function.
            probabilities, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            return jnp.sum(probabilities.astype(jnp.float32) * one_hot)
        return jax.jit(jax.grad(picked))

    one_hot = jax.nn.one_hot(classes, int(model.outputs[0].shape[-1]), dtype=jnp.float32)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    return np.asarray(_compiled(model, build)(jnp.asarray(x), trainable, non_trainable, one_hot))


def _torch_gradients(model, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    import torch

    xt = torch.tensor(x, requires_grad=True)
    out = model(xt, training=False).float()
    picked = out[torch.arange(len(classes)), torch.as_tensor(classes)].sum()
    picked.backward()
    return xt.grad.detach().cpu().numpy()


GRADIENTS = {"tensorflow": _tensorflow_gradients, "jax": _jax_gradients, "torch": _torch_gradients}


def input_gradients(model, images: np.ndarray, classes) -> np.ndarray:
    """d p(class_i | x_i) / d x_i for float32 inputs shaped like the model's input."""
    import keras

    backend = keras.backend.backend()
    if backend not in GRADIENTS:
        raise StudyError(f"saliency: no gradient function for the {backend!r} Keras backend "
                         f"(supported: {', '.join(GRADIENTS)})")
    x = np.asarray(images, dtype=np.float32)
    classes = np.broadcast_to(np.asarray(classes, dtype=np.int32), (len(x),))
    return GRADIENTS[backend](model, x, np.ascontiguousarray(classes))


def integrated_gradients(model, images: np.ndarray, classes, steps: int = STEPS,
                         baseline: float = 0.0) -> np.ndarray:
    """(N, H, W) attributions of each image (N, H, W) raw 0..255 pixels to p(class).

    Midpoint Riemann sum of the gradient along the straight path from a flat image of
    value `baseline` (default 0: black, MNIST's background) to the image, times
    (image - baseline).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    base = np.full_like(images, baseline)
    classes = np.broadcast_to(np.asarray(classes, dtype=np.int32), (len(images),))
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    total = np.zeros_like(images, dtype=np.float64)
    for i in range(len(images)):
        path = base[i] + alphas[:, None, None, None] * (images[i] - base[i])
        for start in range(0, steps, CHUNK):
            grads = input_gradients(model, path[start:start + CHUNK], np.full(min(CHUNK, steps - start), classes[i]))
            total[i] += grads.astype(np.float64).sum(axis=0)
    attributions = (images - base) * total / steps
    return attributions.sum(axis=-1)


def completeness_gap(model, images: np.ndarray, classes, attributions: np.ndarray,
                     baseline: float = 0.0) -> np.ndarray:
    """Per image: sum(attributions) - (p(x) - p(baseline)); near 0 when enough steps were taken."""
    from cnnstudy.evaluation import predict_proba

    images = np.asarray(images)
    base = np.full(images.shape, baseline, dtype=np.float32)
    classes = np.broadcast_to(np.asarray(classes), (len(images),))
    rows = np.arange(len(images))
    p_x = predict_proba(model, images.astype(np.float32))[rows, classes]
    p_0 = predict_proba(model, np.asarray(base, dtype=np.float32))[rows, classes]
    return attributions.reshape(len(images), -1).sum(axis=1) - (p_x - p_0)
