"""Which backend and devices a stage runs on: chosen before Keras is imported, described after.

`select_device` must run before Keras (and so the backend) is imported: hiding GPUs only
works through the environment, the same way for TensorFlow and JAX.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
from contextlib import contextmanager

from cnnstudy.errors import StudyError


def select_device(device: str, onednn: bool = True) -> None:
    """device: auto | cpu | gpu (train.device). Call before importing keras: it sets the
    environment the backend reads at import, then imports Keras itself (collector_paused).
    onednn=False leaves TensorFlow's own oneDNN default (the benchmark's plain-fit reference)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI/BF16/AMX; on AVX2 its
    # Eigen kernels ran ResNet50 at 3.7x fewer images per CPU-second (benchmarks/FINDINGS-avx2.md).
    # setdefault: a user's TF_ENABLE_ONEDNN_OPTS=0 still wins.
    if onednn:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        os.environ["JAX_PLATFORMS"] = "cpu"
    with collector_paused():
        _import_tensorflow_quietly()
        import keras  # noqa: F401  (the backend chosen above)


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off while a block runs, and what the block left alive
    frozen out of it afterwards (`gc.freeze`).

    Importing Keras and TensorFlow creates about 800,000 objects. With the collector on it runs
    over and over on them as they pile up: `import keras` took 9.2-9.8 s here against 6.9-7.6 s
    with it off (2-core AMD EPYC, no AVX-512). Frozen, they are never scanned again: not by
    collections during training, nor by the one at interpreter exit, which took 2.3-2.6 s after
    a short fit and 0.3-0.4 s with them frozen. Module-level objects live until exit anyway, so
    freezing them keeps nothing alive that would have been freed."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _import_tensorflow_quietly() -> None:
    """TensorFlow's C++ start-up notices (oneDNN, absl) ignore TF_CPP_MIN_LOG_LEVEL and
    write to file descriptor 2 during the import, so hide that descriptor just then.

    Skipped when the user asked for TensorFlow's logs (TF_CPP_MIN_LOG_LEVEL below 2).
    A failed import stays silent here and fails again, loudly, when Keras imports it.
    """
    if (os.environ.get("KERAS_BACKEND") != "tensorflow" or "tensorflow" in sys.modules
            or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2"):
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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
    return []


def check_device(device: str) -> dict:
    """Check the request against what is there and say what will be used (runtime.describe_device
    is the stage's entry point: it first sets up multi-worker TensorFlow where asked)."""
    gpus = gpu_names()
    if device == "gpu" and not gpus:
        raise StudyError(f"train.device is 'gpu' but the {backend_name()} backend sees no GPU; "
                         "set train.device to auto or cpu, or install a GPU build (README: Training on a GPU)")
    used = "gpu" if gpus and device != "cpu" else "cpu"
    return {"backend": backend_name(), "device": used, "gpus": gpus if used == "gpu" else [],
            "cpu": platform.processor() or platform.machine(), "onednn": onednn_enabled()}


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its CPU kernels through oneDNN; None on another backend."""
    if backend_name() != "tensorflow":
        return None
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def split_cpu(count: int) -> None:
    """Split the CPU into `count` logical devices (TensorFlow), so that distribution_scope
    mirrors over them. Only before TensorFlow's runtime starts: in a fresh process, after
    importing keras and before any op, device listing or describe_device."""
    if backend_name() != "tensorflow":
        raise StudyError(f"split_cpu: needs the tensorflow backend, not {backend_name()}")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
