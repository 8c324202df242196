"""Forward FLOPs per image (2 x multiply-adds of Conv2D/DepthwiseConv2D/Dense) of the baseline and
each standard model, and the CPU's float32 peak; training is taken as 3x forward (forward, input
gradient, weight gradient). Writes benchmarks/results/avx2/flops.json.

    .venv/bin/python -m benchmarks.experiments.flops   (from the repository root)
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.experiments.harness import ROOT  # noqa: E402
from benchmarks.flops import cpu_peak_gflops, forward_flops  # noqa: E402
from cnnstudy import standard_models  # noqa: E402
from cnnstudy.models import build_cnn  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402
from cnnstudy.recipes import RECIPES  # noqa: E402

out = {"machine": cpu_peak_gflops(), "models": {}}
out["models"]["baseline"] = forward_flops(build_cnn(load_params().train)) / 1e9
for name in RECIPES:
    out["models"][name] = forward_flops(standard_models.build_standard(name, 32)) / 1e9
out["note"] = "GFLOP per image, forward only; training step ~3x"
path = ROOT / "benchmarks/results/avx2/flops.json"
path.write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
