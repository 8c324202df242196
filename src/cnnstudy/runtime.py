"""Backend set-up shared by every stage that trains or runs a model.

`select_device` must run before Keras (and so the backend) is imported: hiding
GPUs only works through the environment, the same way for TensorFlow, JAX and
PyTorch. `seed_everything` and `set_precision` run after.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from cnnstudy.errors import StudyError


def select_device(device: str) -> None:
    """device: auto | cpu | gpu (train.device). Call before importing keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        os.environ["JAX_PLATFORMS"] = "cpu"


def backend_name() -> str:
    import keras

    return keras.backend.backend()


def gpu_names() -> list[str]:
    """The GPUs the active Keras backend can see (empty on a CPU-only machine)."""
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def describe_device(device: str) -> dict:
    """Check the request against what is there and say what will be used."""
    gpus = gpu_names()
    if device == "gpu" and not gpus:
        raise StudyError(f"train.device is 'gpu' but the {backend_name()} backend sees no GPU; "
                         "set train.device to auto or cpu, or install a GPU build (README: Training on a GPU)")
    used = "gpu" if gpus and device != "cpu" else "cpu"
    return {"backend": backend_name(), "device": used, "gpus": gpus if used == "gpu" else [],
            "cpu": platform.processor() or platform.machine()}


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and the backend; deterministic ops where the backend offers them."""
    import keras

    keras.utils.set_random_seed(seed)
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matrix maths in hardware rather than emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, device: str) -> str:
    """precision: auto picks mixed_bfloat16 only where bf16 is native, float32 elsewhere."""
    if precision != "auto":
        return precision
    if device == "gpu":
        return "mixed_bfloat16" if _gpu_has_bf16() else "float32"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


def _gpu_has_bf16() -> bool:
    backend = backend_name()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            major, _ = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
            return major >= 8
        if backend == "torch":
            import torch

            return torch.cuda.is_bf16_supported()
        if backend == "jax":
            return True  # JAX GPUs in practice are Ampere or newer
    except Exception:  # noqa: BLE001 - unknown hardware: stay on float32
        return False
    return False


def set_precision(policy: str) -> None:
    import keras

    keras.mixed_precision.set_dtype_policy(policy)
