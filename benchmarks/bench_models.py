"""The baseline and each standard model: images per CPU-second and achieved GFLOP/s against the
CPU's float32 peak, "today" (TensorFlow's default kernels: oneDNN off on a CPU without AVX-512
VNNI/BF16) against "project" (runtime.select_device's default: oneDNN on), alternated in fresh
subprocesses. Same code path otherwise: the compare stage's build + recipe + training.fit.

Per CPU-second (the training process's own CPU time over the epochs after the first, which
pays for graph tracing) is the figure that holds up on a shared machine; wall images/s is
printed beside it. The first epoch's CPU-seconds are the per-fit set-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import flops

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"today": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "project": {}}


def worker(spec: dict) -> dict:
    os.environ.update(spec["env"])
    import numpy as np

    from cnnstudy import runtime
    from cnnstudy.params import load_params

    params = load_params()
    runtime.select_device("cpu")
    import keras

    from cnnstudy import compare, standard_models, training
    from cnnstudy.train_cnn import new_cnn

    with np.load(spec["data"]) as npz:
        x, y = npz["train_images"][: spec["images"]], npz["train_labels"][: spec["images"]]
    runtime.seed_everything(params.train.seed)
    name = spec["model"]
    if name == "baseline":
        model, batch = new_cnn(params.train), params.train.batch_size
    else:
        recipe = compare.resolve_recipe(name, params.compare)
        batch = spec.get("batch") or recipe.batch_size
        x = standard_models.model_input(name, x, params.compare.input_size)
        model = standard_models.build_standard(name, params.compare.input_size, seed=params.train.seed,
                                               bn_momentum=recipe.bn_momentum)
        training.compile_model(model, params.train.optimizer,
                               compare.learning_rate(recipe, -(-len(y) // batch), spec["epochs"]))
    cpu, wall = [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            wall.append(time.perf_counter() - self.t[0])
            cpu.append(time.process_time() - self.t[1])

    training.fit(model, (x, y), None, spec["epochs"], batch, callbacks=[Clock()])
    steady = len(y) * (len(cpu) - 1)
    return {"model": name, "images": len(y), "batch": batch, "onednn": runtime.onednn_enabled(),
            "forward_gflop": flops.forward_flops(model) / 1e9, "first_epoch_cpu_s": cpu[0],
            "first_epoch_s": wall[0], "cpu_images_per_s": steady / sum(cpu[1:]),
            "images_per_s": steady / sum(wall[1:])}


def run(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"bench_models: {spec['model']} {spec['config']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


# images and epochs per model: enough steady steps to measure, few enough for a shared 2-core CPU
SIZES = {"baseline": (3600, 3), "lenet5": (3600, 3), "resnet50": (512, 2), "densenet121": (512, 2)}


def run_models(data: Path, models: list[str], pairs: int = 1, batch: int | None = None) -> dict:
    """batch: also run the project config at this batch size (throughput only: the recipe's lr is not
    rescaled here, so accuracy at that batch needs its own check)."""
    peak = flops.cpu_peak_gflops()
    print(f"float32 peak: {peak['peak_gflops']} GFLOP/s ({peak['cores']} cores x "
          f"{peak['peak_gflops_per_core']}; {peak['lanes_fp32']} lanes, {peak['ghz']} GHz)")
    out: dict = {"peak": peak, "models": {}}
    for name in models:
        images, epochs = SIZES.get(name, (512, 2))
        runs: dict = {c: [] for c in CONFIGS}
        for i in range(pairs):
            for config in (CONFIGS if i % 2 == 0 else reversed(list(CONFIGS))):
                r = run({"model": name, "config": config, "env": CONFIGS[config], "data": str(data),
                         "images": images, "epochs": epochs})
                r.update(flops.achieved(r["cpu_images_per_s"], r["forward_gflop"], peak["peak_gflops_per_core"]))
                runs[config].append(r)
                print(f"  {name:12s} {config:8s} oneDNN {str(r['onednn']):5s} {r['cpu_images_per_s']:8.1f} img/CPU-s "
                      f"({r['images_per_s']:7.1f} wall) {r['gflops']:6.1f} GFLOP/CPU-s = {r['of_core_peak']:.0%} "
                      f"of a core's peak; first epoch {r['first_epoch_cpu_s']:.0f} CPU-s", flush=True)
        if batch and name != "baseline":
            r = run({"model": name, "config": f"project-b{batch}", "env": {}, "data": str(data), "images": images,
                     "epochs": epochs, "batch": batch})
            r.update(flops.achieved(r["cpu_images_per_s"], r["forward_gflop"], peak["peak_gflops_per_core"]))
            runs[f"project-b{batch}"] = [r]
            print(f"  {name:12s} batch {batch}: {r['cpu_images_per_s']:8.1f} img/CPU-s, {r['gflops']:6.1f} GFLOP/CPU-s; "
                  f"first epoch {r['first_epoch_cpu_s']:.0f} CPU-s", flush=True)
        ratio = [p["cpu_images_per_s"] / t["cpu_images_per_s"] for t, p in zip(runs["today"], runs["project"])]
        print(f"  {name}: project/today {', '.join(f'{v:.2f}x' for v in ratio)} images per CPU-second")
        out["models"][name] = {"runs": runs, "ratio_per_cpu_s": ratio}
    return out


if __name__ == "__main__":
    print("RESULT " + json.dumps(worker(json.loads(sys.argv[1]))))
