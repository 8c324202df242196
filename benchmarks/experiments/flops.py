"""Forward FLOPs per image (2 x multiply-adds of Conv2D/DepthwiseConv2D/Dense) of the baseline and
each standard model, and the CPU's float32 peak; training is taken as 3x forward (forward, input
gradient, weight gradient). Writes benchmarks/results/avx2/flops.json."""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (puts src/ on the path)

from cnnstudy import standard_models  # noqa: E402
from cnnstudy.models import build_cnn  # noqa: E402
from cnnstudy.params import load_params  # noqa: E402

out = {"machine": harness.cpu_peak_gflops(), "models": {}}
out["models"]["baseline"] = harness.forward_flops(build_cnn(load_params().train)) / 1e9
for name in standard_models.RECIPES:
    out["models"][name] = harness.forward_flops(standard_models.build_standard(name, 32)) / 1e9
out["note"] = "GFLOP per image, forward only; training step ~3x"
path = harness.ROOT / "benchmarks/results/avx2/flops.json"
path.write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
