"""Speed experiments on a CPU without AVX-512 (issue 13): one training run per subprocess.

Usage (from the repository root, as a module so that `benchmarks.flops` imports):
    .venv/bin/python -m benchmarks.experiments.harness OUT.json --pairs 3 CONFIG_JSON CONFIG_JSON ...

Each CONFIG_JSON is a dict (keys below, in `worker`). The configurations run round by round, the
order reversed every other round (A B, B A, A B, ...), each in a fresh subprocess, so load from the
other processes on this shared machine hits every configuration alike. Per run it records the
steady images/s (epochs after the first, wall clock), the same per CPU second of the worker
process (all its threads: `resource.getrusage(RUSAGE_CHILDREN)` around the subprocess and the
in-process `time.process_time` per epoch), the first epoch, and accuracies.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_worker import reference_model
from benchmarks.flops import cpu_peak_gflops, forward_flops  # the FLOP formula `make bench` uses

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("/tmp/cnnstudy-speed-sample.npz")
BUNDLED = ROOT / "data" / "bundled" / "mnist-sample"


def sample_data() -> Path:
    """The default 6,000-image subset, split exactly as the prepare stage splits it (cached in /tmp)."""
    if DATA.exists():
        return DATA
    import numpy as np

    from cnnstudy.registry import DIGITS, FILENAMES
    from cnnstudy.idx import read_pair
    from cnnstudy.params import load_params
    from cnnstudy.prepare import split_dataset

    params = load_params().prepare
    train = read_pair(BUNDLED / FILENAMES["train_images"], BUNDLED / FILENAMES["train_labels"])
    test = read_pair(BUNDLED / FILENAMES["test_images"], BUNDLED / FILENAMES["test_labels"])
    splits = split_dataset(*train, *test, params, DIGITS)
    tmp = DATA.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{n}_{k}": getattr(s, k) for n, s in splits.items() for k in ("images", "labels")})
    os.replace(tmp, DATA)
    return DATA


# ---------------------------------------------------------------- one run (subprocess)
def worker(spec: dict) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for key, value in spec.get("env", {}).items():
        os.environ[key] = str(value)
    os.environ["KERAS_BACKEND"] = spec.get("backend", "tensorflow")
    import numpy as np

    if os.environ["KERAS_BACKEND"] == "tensorflow" and "threads" in spec:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"][0])
        tf.config.threading.set_inter_op_parallelism_threads(spec["threads"][1])
    import keras

    from cnnstudy import standard_models
    from cnnstudy.models import build_cnn
    from cnnstudy.params import load_params
    from cnnstudy.recipes import RECIPES

    if spec.get("channels") == "first":
        keras.config.set_image_data_format("channels_first")
        channels_last_shape = standard_models.input_shape  # the builders ask it for (H, W, C)

        def channels_first_shape(name, size):
            height, width, channels = channels_last_shape(name, size)
            return channels, height, width

        standard_models.input_shape = channels_first_shape
    cfg = load_params().train
    seed = spec.get("seed", cfg.seed)
    keras.utils.set_random_seed(seed)
    with np.load(spec.get("data", str(DATA))) as npz:
        data = {k: npz[k] for k in npz.files}
    x_train, y_train = data["train_images"], data["train_labels"]
    x_val, y_val = data["val_images"], data["val_labels"]
    x_test, y_test = data["test_images"], data["test_labels"]
    if spec.get("max_train"):
        x_train, y_train = x_train[:spec["max_train"]], y_train[:spec["max_train"]]
        x_val, y_val = x_val[:spec.get("max_eval", len(y_val))], y_val[:spec.get("max_eval", len(y_val))]
        x_test, y_test = x_test[:spec.get("max_eval", len(y_test))], y_test[:spec.get("max_eval", len(y_test))]
    name = spec["model"]
    epochs = spec["epochs"]
    batch = spec.get("batch")
    t0 = time.perf_counter()
    if name in ("baseline", "reference"):
        batch = batch or cfg.batch_size
        lr = spec.get("lr", cfg.lr)
        if name == "reference":  # bench.py's A: Sequential, float32 [0,1] input, Keras defaults
            model = reference_model(keras, cfg)
        else:
            model = build_cnn(cfg)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=_schedule(keras, spec, lr, len(y_train), batch,
                                                                              epochs)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=spec.get("jit", False), steps_per_execution=spec.get("spe", 1))
        prep = (lambda im: (im.astype("float32") / 255.0)[..., None]) if name == "reference" else \
            (lambda im: im[..., None])
        if spec.get("input") == "float32" and name != "reference":
            prep = lambda im: im[..., None].astype("float32")  # noqa: E731
    else:
        recipe = RECIPES[name]
        batch = batch or recipe.batch_size
        lr = spec.get("lr", recipe.lr)
        size = spec.get("input_size", 32)
        model = standard_models.build_standard(name, size, seed=seed, bn_momentum=recipe.bn_momentum)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=_schedule(
                          keras, spec, lr, len(y_train), batch, epochs, recipe.warmup_epochs)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=spec.get("jit", "auto"), steps_per_execution=spec.get("spe", 1))

        def prep(im, name=name, size=size):
            return standard_models.model_input(name, im, size)
    xt, xv, xs = prep(x_train), prep(x_val), prep(x_test)
    if spec.get("channels") == "first":
        xt, xv, xs = (np.moveaxis(a, -1, 1).copy() for a in (xt, xv, xs))
    build_s = time.perf_counter() - t0
    timer = _Timer(keras)
    start = time.perf_counter()
    hist = model.fit(xt, y_train, batch_size=batch, epochs=epochs,
                     validation_data=(xv, y_val) if spec.get("validate", True) else None,
                     shuffle=True, callbacks=[timer], verbose=0)
    fit_s = time.perf_counter() - start
    out = {"spec": spec, "backend": keras.backend.backend(), "batch": batch, "images": len(y_train),
           "epoch_s": timer.wall, "epoch_cpu_s": timer.cpu, "fit_s": fit_s, "build_s": build_s,
           "forward_gflop_per_image": forward_flops(model) / 1e9,
           "history": {k: [round(float(v), 4) for v in vs] for k, vs in hist.history.items()}}
    if spec.get("test", True):
        out["test_accuracy"] = float(np.mean(model.predict(xs, batch_size=256, verbose=0).argmax(1) == y_test))
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf

        out["tf_version"] = tf.__version__
        try:
            from tensorflow.python.util import _pywrap_util_port

            out["onednn_enabled"] = bool(_pywrap_util_port.IsMklEnabled())
        except Exception as exc:  # noqa: BLE001 - diagnostic only
            out["onednn_enabled"] = repr(exc)
    else:
        import jax

        out["jax_version"] = jax.__version__
    return out


def _schedule(keras, spec, lr, n, batch, epochs, warmup_epochs=0):
    """constant (default for the baseline), recipe (warm-up + cosine, like compare.learning_rate),
    or onecycle (warm-up over spec['warmup'] of the steps, cosine to 0)."""
    kind = spec.get("schedule", "recipe" if warmup_epochs or spec["model"] not in ("baseline", "reference")
                    else "constant")
    steps = -(-n // batch)
    total = max(1, steps * epochs)
    if kind == "constant":
        return lr
    warmup = int(total * spec["warmup"]) if kind == "onecycle" else min(warmup_epochs * steps, total - 1)
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(lr, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=lr, warmup_steps=warmup)


def _Timer(keras):
    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._w, self._c = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._w)
            self.cpu.append(time.process_time() - self._c)

    return Timer()


# ---------------------------------------------------------------- orchestration
def run_one(spec: dict) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.experiments.harness", "--worker", json.dumps(spec)],
                          cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        return {"spec": spec, "error": proc.stderr[-2500:], "returncode": proc.returncode}
    r = json.loads(lines[-1][7:])
    n, ep = r["images"], r["epoch_s"]
    r["process_wall_s"] = wall
    r["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["images_per_s"] = n * (len(ep) - 1) / sum(ep[1:]) if len(ep) > 1 else n / ep[0]
    cpu = r["epoch_cpu_s"]
    r["images_per_cpu_s"] = n * (len(cpu) - 1) / sum(cpu[1:]) if len(cpu) > 1 else n / cpu[0]
    r["fastest_epoch_images_per_s"] = n / min(ep[1:] or ep)
    r["train_gflops_achieved"] = 3 * r["forward_gflop_per_image"] * r["images_per_s"]
    r["load_avg_after"] = os.getloadavg()[0]
    return r


def main(argv: list[str]) -> None:
    if argv[0] == "--worker":
        print("RESULT " + json.dumps(worker(json.loads(argv[1]))), flush=True)
        return
    out_path, rest = Path(argv[0]), argv[1:]
    pairs = 3
    if rest[0] == "--pairs":
        pairs, rest = int(rest[1]), rest[2:]
    configs = [json.loads(c) for c in rest]
    sample_data()
    runs: list[dict] = []
    for rnd in range(pairs):
        order = list(range(len(configs)))
        if rnd % 2:
            order.reverse()
        for i in order:
            r = run_one(configs[i])
            r["config"], r["round"] = i, rnd
            runs.append(r)
            _write(out_path, configs, summarise(configs, runs, pairs), runs)  # partial results survive a kill
            if "error" in r:
                print(f"config {i}: ERROR {r['error'][-800:]}", flush=True)
            else:
                print(f"round {rnd} config {i} {configs[i].get('label', '')}: {r['images_per_s']:.0f} img/s, "
                      f"{r['images_per_cpu_s']:.0f} img/CPU-s, first epoch {r['epoch_s'][0]:.1f}s, "
                      f"test {r.get('test_accuracy', float('nan')):.4f}, proc cpu {r['process_cpu_s']:.0f}s "
                      f"wall {r['process_wall_s']:.0f}s load {r['load_avg_after']:.1f}", flush=True)
    summary = summarise(configs, runs, pairs)
    _write(out_path, configs, summary, runs)
    for row in summary:
        print(json.dumps(row))


def _write(out_path: Path, configs, summary, runs) -> None:
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"machine": cpu_peak_gflops(), "configs": configs, "summary": summary,
                               "runs": runs}, indent=1))
    os.replace(tmp, out_path)


def summarise(configs, runs, pairs):
    rows = []
    for i, c in enumerate(configs):
        mine = [r for r in runs if r["config"] == i and "error" not in r]
        if not mine:
            rows.append({"config": i, "label": c.get("label"), "error": True})
            continue
        row = {"config": i, "label": c.get("label"),
               "images_per_s_median": statistics.median(r["images_per_s"] for r in mine),
               "images_per_cpu_s_median": statistics.median(r["images_per_cpu_s"] for r in mine),
               "first_epoch_s_median": statistics.median(r["epoch_s"][0] for r in mine),
               "test_accuracy": [r.get("test_accuracy") for r in mine],
               "gflops_achieved_median": statistics.median(r["train_gflops_achieved"] for r in mine),
               "forward_gflop_per_image": mine[0]["forward_gflop_per_image"],
               "onednn_enabled": mine[0].get("onednn_enabled")}
        if i:  # ratio to config 0, per round (pairs)
            ratios, cpu_ratios = [], []
            for rnd in range(pairs):
                a = [r for r in runs if r["config"] == 0 and r["round"] == rnd and "error" not in r]
                b = [r for r in mine if r["round"] == rnd]
                if a and b:
                    ratios.append(b[0]["images_per_s"] / a[0]["images_per_s"])
                    cpu_ratios.append(b[0]["images_per_cpu_s"] / a[0]["images_per_cpu_s"])
            if ratios:
                row["ratio_vs_0"] = {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)}
                row["cpu_ratio_vs_0"] = {"min": min(cpu_ratios), "median": statistics.median(cpu_ratios),
                                         "max": max(cpu_ratios)}
        rows.append(row)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
