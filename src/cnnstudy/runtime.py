"""Backend set-up shared by every stage that trains or runs a model, in the order a stage calls it.

`select_device` runs before Keras (and so the backend) is imported (devices.py); `set_up` (the
device check of `describe_device`, then `resolve_precision`/`set_precision` of precision.py) and
`seed_everything` run after, then the stage builds, compiles and fits its model inside
`distribution_scope(device_info)` (distribution.py: data parallel where there are several devices).
Stages import all of them from here.

Everything backend-specific lives in those modules, behind a check of the active backend:
models.py and training.py use the Keras API only, so they run on JAX as well (tests/test_jax.py).
"""

from __future__ import annotations

import os

from cnnstudy import devices, distribution, precision
from cnnstudy.devices import backend_name, gpu_names, onednn_enabled, select_device, split_cpu
from cnnstudy.distribution import distribution_scope
from cnnstudy.precision import cpu_has_native_bf16, resolve_precision, set_precision

__all__ = ["backend_name", "clear_session", "cpu_has_native_bf16", "describe_device", "distribution_scope",
           "gpu_names", "onednn_enabled", "resolve_precision", "restore_session_state", "seed_everything",
           "select_device", "set_precision", "set_up", "split_cpu"]


def describe_device(device: str) -> dict:
    """Check the request against what is there and say what will be used."""
    if os.environ.get("TF_CONFIG") and backend_name() == "tensorflow":
        # MultiWorkerMirroredStrategy must exist before TensorFlow's runtime starts,
        # and listing logical devices (devices.check_device) starts it.
        distribution.tf_strategy(device)
    return devices.check_device(device)


def set_up(device: str, precision: str) -> tuple[dict, str]:
    """What every stage that runs a model does after select_device and importing Keras: check the
    device (describe_device), then set the precision train.precision resolves to on it.
    Returns (device_info, resolved precision) for the stage's metrics."""
    info = describe_device(device)
    resolved = resolve_precision(precision, info["device"])
    set_precision(resolved)
    return info, resolved


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and the backend; deterministic ops where the backend offers them.

    Also puts back what keras.backend.clear_session() dropped (the kfold stage calls that before
    each fold, then this)."""
    import keras

    restore_session_state()
    keras.utils.set_random_seed(seed)
    if backend_name() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    # JAX: XLA on CPU is deterministic as it is; its random numbers come from Keras's seed.


def restore_session_state() -> None:
    """Re-apply the precision (set_precision) and the distribution scope (distribution_scope)
    if keras.backend.clear_session() dropped them."""
    precision.restore_policy()
    distribution.restore_distribution()


def clear_session() -> None:
    """keras.backend.clear_session() that keeps the precision and the distribution scope."""
    import keras

    keras.backend.clear_session()
    restore_session_state()
