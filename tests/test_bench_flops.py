"""The yardstick `make bench` prints achieved GFLOP/s against: FLOPs per image and the CPU's peak."""

import importlib.util
from pathlib import Path

import keras
import pytest

SPEC = importlib.util.spec_from_file_location("flops", Path(__file__).resolve().parents[1] / "benchmarks" / "flops.py")
flops = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(flops)


def test_forward_flops_counts_conv_depthwise_and_dense_multiply_adds():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)         # 8*8*4 outputs x 3*3*3 MACs
    x = keras.layers.DepthwiseConv2D(3, padding="valid")(x)       # 6*6*4 outputs x 3*3 MACs
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10)(keras.layers.BatchNormalization()(x))  # 144 x 10 MACs; BN not counted
    model = keras.Model(inputs, outputs)
    assert flops.forward_flops(model) == 2 * (8 * 8 * 4 * 27 + 6 * 6 * 4 * 9 + 144 * 10)


CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 {}\ncpu MHz\t\t: 2445.000\n"


@pytest.mark.parametrize("flags, lanes", [("avx2 fma", 8), ("avx2 fma avx512f", 16), ("sse4_2", 4), ("avx2", 4)])
def test_peak_follows_the_vector_width(flags, lanes):
    peak = flops.cpu_peak_gflops(CPUINFO.format(flags), cores=2)
    assert peak["lanes_fp32"] == lanes
    assert peak["peak_gflops_per_core"] == pytest.approx(2 * lanes * 2 * 2.445, abs=0.1)
    assert peak["peak_gflops"] == pytest.approx(2 * peak["peak_gflops_per_core"], abs=0.1)


def test_achieved_is_three_forward_passes_per_trained_image():
    assert flops.achieved(100.0, 0.5, 75.0) == {"gflops": 150.0, "of_core_peak": 2.0}
    assert flops.achieved(None, 0.5, 75.0) == {"gflops": None, "of_core_peak": None}
