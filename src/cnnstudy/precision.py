"""train.precision: which dtype policy a model computes in, and keeping it set.

`auto` means bf16 only where the hardware does bf16 maths natively (emulated bf16 is slower
than float32); the policy set here is re-applied by `restore_policy` after
keras.backend.clear_session() resets Keras's to float32.
"""

from __future__ import annotations

from pathlib import Path

from cnnstudy.devices import backend_name
from cnnstudy.errors import StudyError

RESOLVED = ("float32", "mixed_bfloat16", "mixed_float16")
_state: dict = {"policy": None}  # what set_precision set; None: Keras's default, untouched


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

    if policy not in RESOLVED:
        raise StudyError(f"set_precision: expected a resolved precision, got {policy!r} (resolve_precision first)")
    keras.mixed_precision.set_dtype_policy(policy)
    _state["policy"] = policy


def restore_policy() -> None:
    """Re-apply set_precision's policy if keras.backend.clear_session() reset it."""
    import keras

    policy = _state["policy"]
    if policy is not None and keras.config.dtype_policy().name != policy:
        keras.mixed_precision.set_dtype_policy(policy)

