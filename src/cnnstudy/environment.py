"""What a run ran on (metrics/environment.json and the report's context line): CPU and the
instruction sets that decide its speed and precision (AVX2, FMA, AVX-512, AMX: bfloat16 is fast
only with AVX-512 BF16 or AMX), cores, GPU, Keras backend, precision, library versions.

Cheap and import-free: it reads /proc/cpuinfo and package metadata, never imports TensorFlow
or JAX, so the summary stage (which renders) stays quick.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

# name shown -> the distributions that provide it (TensorFlow ships as tensorflow-cpu on Linux too)
PACKAGES = {"keras": ("keras",), "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"),
            "jax": ("jax",), "jaxlib": ("jaxlib",), "numpy": ("numpy",), "dvc": ("dvc",),
            "scikit-learn": ("scikit-learn",), "matplotlib": ("matplotlib",)}
RELEVANT_FLAG = re.compile(r"^(avx2|fma|avx512\w*|amx\w*|avx_vnni\w*)$")


def cpu_info(cpuinfo: str | None = None) -> dict:
    """The CPU model and its relevant instruction sets, from /proc/cpuinfo's text (Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    relevant = sorted({f for f in (flags.group(1).split() if flags else []) if RELEVANT_FLAG.match(f)})
    return {"cpu": model.group(1).strip() if model else (platform.processor() or platform.machine()),
            "instruction_sets": relevant}


def gpus() -> list[str]:
    """NVIDIA GPUs by name (nvidia-smi); empty where there is none or no driver."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def keras_backend() -> str:
    """The backend Keras will use: KERAS_BACKEND, else ~/.keras/keras.json, else TensorFlow (Keras' default)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for shown, distributions in PACKAGES.items():
        found[shown] = None
        for distribution in distributions:
            try:
                found[shown] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def describe(devices: list[str], precisions: list[str], backends: list[str] | None = None) -> dict:
    """The whole record; `devices`, `precisions` and `backends` are what the training stages reported
    (the backend is guessed from the environment when they did not say)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {**cpu_info(), "cores": affinity, "gpus": gpus(), "os": f"{platform.system()} {platform.release()}",
            "keras_backend": ", ".join(sorted(set(filter(None, backends or [])))) or keras_backend(), "training_devices": sorted(set(filter(None, devices))),
            "precision": sorted(set(filter(None, precisions))), "versions": versions()}


def sentence(env: dict) -> str:
    """One line for the report: what the figures were measured on."""
    sets = env.get("instruction_sets") or []
    avx512 = [s for s in sets if s.startswith("avx512")]
    amx = [s for s in sets if s.startswith("amx")]
    isa = ", ".join(s for s in sets if not s.startswith(("avx512", "amx")))
    isa += (f"; AVX-512 ({', '.join(avx512)})" if avx512 else "; no AVX-512") + ("; AMX" if amx else "; no AMX")
    gpu = ", ".join(env.get("gpus") or []) or "no GPU"
    v = env.get("versions", {})
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    return (f"Run on {env.get('cpu')} ({env.get('cores')} cores available; {isa.lstrip('; ')}), {gpu}; "
            f"Keras backend {env.get('keras_backend')}, training on {', '.join(env.get('training_devices') or ['?'])} "
            f"in {', '.join(env.get('precision') or ['?'])}. Versions: {libs}.")
