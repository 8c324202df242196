"""Backend set-up shared by every stage that trains or runs a model.

`select_device` must run before Keras (and so the backend) is imported: hiding
GPUs only works through the environment, the same way for TensorFlow, JAX and
PyTorch. `describe_device`, `set_precision` and `seed_everything` run after,
then the stage builds, compiles and fits its model inside
`distribution_scope(device_info)` (data parallel where there are several devices).

Everything backend-specific lives here, behind a check of the active backend:
models.py and training.py use the Keras API only, so they run on JAX as well.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path
from typing import Iterator

from cnnstudy.errors import StudyError

# What set_precision and distribution_scope set up. keras.backend.clear_session() (the
# kfold stage calls it before each fold) resets Keras's dtype policy to float32 and drops
# tf.distribute scopes with the default graph, so seed_everything, which follows every
# clear_session there, puts them back (restore_session_state).
_session: dict = {"policy": None, "tf_strategy": None, "tf_scopes": [], "jax_distribution": None}


def select_device(device: str) -> None:
    """device: auto | cpu | gpu (train.device). Call before importing keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        os.environ["JAX_PLATFORMS"] = "cpu"
    _import_tensorflow_quietly()


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
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def describe_device(device: str) -> dict:
    """Check the request against what is there and say what will be used."""
    if os.environ.get("TF_CONFIG") and backend_name() == "tensorflow":
        # MultiWorkerMirroredStrategy must exist before TensorFlow's runtime starts,
        # and listing logical devices (just below) starts it.
        _tf_strategy(device)
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

    restore_session_state()
    keras.utils.set_random_seed(seed)
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """AVX-512 BF16 or AMX: bf16 matrix maths in hardware rather than emulated.

    Reads /proc/cpuinfo (Linux); elsewhere (or unreadable) the answer is no, so `auto`
    stays on float32. `cpuinfo` is for tests.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


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
            import jax

            gpu = [d for d in jax.devices() if d.platform == "gpu"][0]
            capability = getattr(gpu, "compute_capability", None)  # "8.0" on CUDA; absent elsewhere
            return capability is not None and float(capability) >= 8
    except Exception:  # noqa: BLE001 - unknown hardware: stay on float32
        return False
    return False


def set_precision(policy: str) -> None:
    """A resolved precision (float32, mixed_bfloat16, mixed_float16) as Keras's global dtype policy."""
    import keras

    if policy not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise StudyError(f"set_precision: expected a resolved precision, got {policy!r} (resolve_precision first)")
    keras.mixed_precision.set_dtype_policy(policy)
    _session["policy"] = policy


def restore_session_state() -> None:
    """Re-apply the precision (set_precision) and the distribution scope (distribution_scope)
    if keras.backend.clear_session() dropped them."""
    import keras

    policy = _session["policy"]
    if policy is not None and keras.config.dtype_policy().name != policy:
        keras.mixed_precision.set_dtype_policy(policy)
    _restore_distribution()


def clear_session() -> None:
    """keras.backend.clear_session() that keeps the precision and the distribution scope."""
    import keras

    keras.backend.clear_session()
    restore_session_state()


# ---------------------------------------------------------------- data parallelism
_strategy_cache: dict = {}


def _tf_strategy(device: str):
    """The tf.distribute strategy for this process, made once (TensorFlow allows one MWMS)."""
    key = "multi-worker" if os.environ.get("TF_CONFIG") else device
    if key in _strategy_cache:
        return _strategy_cache[key]
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        # One replica per local GPU on each worker; workers from TF_CONFIG's cluster.
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")] if device == "gpu" else []
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy(gpus)
        elif not gpus and len(cpus) > 1:
            # Only when the CPU was split into logical devices on purpose (split_cpu):
            # that is how the mirrored path is tested on a machine without GPUs.
            strategy = tf.distribute.MirroredStrategy(cpus)
        else:
            strategy = tf.distribute.get_strategy()  # the default: one device, no-op scope
    _strategy_cache[key] = strategy
    return strategy


def _jax_distribution():
    import jax
    import keras

    if jax.process_count() > 1 or jax.local_device_count() > 1:
        # Multi-host JAX needs keras.distribution.initialize() first (JAX_COORDINATOR_ADDRESS etc.).
        return keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    return None


@contextlib.contextmanager
def distribution_scope(device_info: dict) -> Iterator[dict]:
    """Data parallelism through the backend's own API; build, compile and fit inside it.

    TensorFlow: MultiWorkerMirroredStrategy when TF_CONFIG is set, MirroredStrategy over
    all local GPUs when there are several (or over the logical CPUs of split_cpu), else
    none (one device). JAX: keras.distribution.DataParallel over all devices when there
    are several. Keras splits each batch of cfg.batch_size images across the replicas
    (batch_size stays the global batch) and sums their gradients.

    keras.backend.clear_session() (the kfold stage calls it before each fold) drops the
    scope; seed_everything, which follows it there, or runtime.clear_session enter it again.

    Yields {"strategy": name, "replicas": n} for the stage's metrics.
    """
    backend = backend_name()
    if backend == "tensorflow":
        strategy = _tf_strategy(device_info.get("device", "cpu"))
        name = type(strategy).__name__
        if name == "CollectiveAllReduceStrategy":  # what MultiWorkerMirroredStrategy() is in TF 2
            name = "MultiWorkerMirroredStrategy"
        if name.startswith("_Default"):
            yield {"strategy": "default", "replicas": 1}
            return
        _session["tf_strategy"], _session["tf_scopes"] = strategy, []
        _enter_tf_scope()
        try:
            yield {"strategy": name, "replicas": int(strategy.num_replicas_in_sync)}
        finally:
            _exit_tf_scopes()
        return
    if backend == "jax":
        distribution = _jax_distribution()
        if distribution is not None:
            _session["jax_distribution"] = distribution
            try:
                with distribution.scope():
                    yield {"strategy": "DataParallel", "replicas": int(distribution.num_model_replicas)}
            finally:
                _session["jax_distribution"] = None
            return
    yield {"strategy": "default", "replicas": 1}


def _enter_tf_scope() -> None:
    import tensorflow as tf

    scope = _session["tf_strategy"].scope()
    scope.__enter__()
    # A tf.distribute scope lives on the default graph, which clear_session replaces.
    _session["tf_scopes"].append((scope, tf.compat.v1.get_default_graph()))


def _exit_tf_scopes() -> None:
    import tensorflow as tf

    scopes, _session["tf_scopes"], _session["tf_strategy"] = _session["tf_scopes"], [], None
    graph = tf.compat.v1.get_default_graph()
    for scope, scope_graph in reversed(scopes):
        if scope_graph is graph:  # the others went with the graph clear_session discarded
            scope.__exit__(None, None, None)


def _restore_distribution() -> None:
    if _session.get("tf_strategy") is not None:
        import tensorflow as tf

        if not tf.distribute.has_strategy():
            _enter_tf_scope()
    if _session.get("jax_distribution") is not None:
        import keras

        if keras.distribution.distribution() is None:
            keras.distribution.set_distribution(_session["jax_distribution"])


def split_cpu(count: int) -> None:
    """Split the CPU into `count` logical devices (TensorFlow), so that distribution_scope
    mirrors over them. Only before TensorFlow's runtime starts: in a fresh process, after
    importing keras and before any op, device listing or describe_device."""
    if backend_name() != "tensorflow":
        raise StudyError(f"split_cpu: needs the tensorflow backend, not {backend_name()}")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)

