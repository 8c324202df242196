"""FLOPs per image of a Keras model and this CPU's float32 peak: the yardstick `make bench`
prints achieved GFLOP/s against (moved here from experiments/harness.py)."""

from __future__ import annotations

import os
from pathlib import Path

TRAINING_FACTOR = 3  # a training step ~ forward + input gradient + weight gradient


def forward_flops(model) -> int:
    """2 x multiply-adds of every Conv2D / DepthwiseConv2D / Dense layer for one image (forward).

    BatchNorm, pooling and activations are left out (a few percent at most here)."""
    from keras import layers

    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * out[1] * out[2] * out[3] * kh * kw
        elif isinstance(layer, layers.Conv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * out[1] * out[2] * out[3] * kh * kw * layer.input.shape[-1] // layer.groups
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def cpu_peak_gflops(cpuinfo: str | None = None, cores: int | None = None) -> dict:
    """float32 peak: cores x 2 FMA units (Zen 2/3, Skylake-SP and later) x lanes x 2 flops x GHz.

    Lanes: 16 with AVX-512, 8 with AVX2 + FMA, 4 otherwise. Per core too, because the figure
    bench compares against is per CPU-second (one core's worth of time)."""
    info = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    lines = info.splitlines()
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    mhz = max((float(line.split(":", 1)[1]) for line in lines if line.startswith("cpu MHz")), default=0.0)
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    cores = cores or os.cpu_count() or 1
    per_core = 2 * lanes * 2 * mhz / 1000
    return {"cores": cores, "fma_units": 2, "lanes_fp32": lanes, "ghz": round(mhz / 1000, 3),
            "peak_gflops_per_core": round(per_core, 1), "peak_gflops": round(cores * per_core, 1)}


def achieved(images_per_s: float | None, forward_gflop: float, peak_per_core: float) -> dict:
    """GFLOP/s a training rate means, and its share of one core's peak (the rate is per CPU-second)."""
    if not images_per_s:
        return {"gflops": None, "of_core_peak": None}
    gflops = images_per_s * forward_gflop * TRAINING_FACTOR
    return {"gflops": round(gflops, 1), "of_core_peak": round(gflops / peak_per_core, 3) if peak_per_core else None}
