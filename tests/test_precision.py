"""train.precision: auto resolves to bfloat16 only on native hardware; bf16 training is deterministic."""

import numpy as np
import pytest

from cnnstudy import precision, runtime
from cnnstudy.errors import StudyError
from cnnstudy.kfold import select_epochs
from cnnstudy.params import KFoldParams

runtime.select_device("cpu")

import keras  # noqa: E402

from cnnstudy.train_cnn import train_cnn  # noqa: E402

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx512f amx_bf16 amx_tile\n"
SKYLAKE = "flags\t\t: fpu sse2 avx2 avx512f avx512bw\nbugs\t\t: avx512_bf16_is_not_a_flag_here\n"


@pytest.fixture
def policy():
    """Leaves Keras's dtype policy (process-wide) as float32 for the other tests."""
    yield
    precision._state["policy"] = None
    keras.mixed_precision.set_dtype_policy("float32")


def test_native_bf16_is_read_from_the_cpu_flags():
    assert precision.cpu_has_native_bf16(ZEN4)
    assert precision.cpu_has_native_bf16(SAPPHIRE_RAPIDS)
    assert not precision.cpu_has_native_bf16(SKYLAKE)
    assert not precision.cpu_has_native_bf16("")


def test_auto_picks_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto", "cpu") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto", "cpu") == "float32"
    monkeypatch.setattr(precision, "_gpu_has_bf16", lambda: False)  # e.g. a pre-Ampere GPU
    assert precision.resolve_precision("auto", "gpu") == "float32"
    monkeypatch.setattr(precision, "_gpu_has_bf16", lambda: True)
    assert precision.resolve_precision("auto", "gpu") == "mixed_bfloat16"
    for explicit in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision.resolve_precision(explicit, "cpu") == explicit


def test_set_precision_wants_a_resolved_policy(policy):
    with pytest.raises(StudyError, match="resolve_precision first"):
        runtime.set_precision("auto")


def test_the_policy_survives_clear_session(policy):
    runtime.set_precision("mixed_bfloat16")
    runtime.clear_session()
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    keras.backend.clear_session()  # what the kfold stage calls before each fold ...
    runtime.seed_everything(1)     # ... and right after it
    assert keras.config.dtype_policy().name == "mixed_bfloat16"


def train_bf16(cfg, digits):
    return train_cnn(cfg, (digits[0][:300], digits[1][:300]), (digits[0][300:], digits[1][300:]), 2)


def test_bf16_training_is_deterministic(policy, tiny, digits):
    runtime.set_precision("mixed_bfloat16")
    model_a, result_a = train_bf16(tiny, digits)
    model_b, result_b = train_bf16(tiny, digits)
    conv = model_a.get_layer("conv1")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"  # bf16 maths, float32 weights
    assert model_a.output.dtype == "float32"
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert result_a.history == result_b.history
    assert np.isfinite(result_a.history["loss"]).all()


def test_kfold_folds_keep_the_precision(policy, tiny, digits):
    runtime.set_precision("mixed_bfloat16")
    select_epochs(tiny, KFoldParams(folds=2, max_epochs=1, patience=1), digits[0][:100], digits[1][:100],
                  log=lambda _: None)
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
