"""Training speed and pipeline timings: `make bench` (or .venv/bin/python benchmarks/bench.py --help).

Training, A against B, on the same data, epochs and seed, alternated pair by pair
(A B, then B A, ...) so that other load on the machine hits both alike:

  A  the reference: plain `model.fit` on float32 NumPy arrays scaled to [0, 1], a
     Sequential model with the baseline's layers and no Rescaling layer, Keras defaults
     for everything the course reports did not set (float32, no XLA, default threads,
     validation at the training batch size). Same batch size, optimizer and learning
     rate as params.yaml's `train:` (the baseline).
  B  the project's path, as stages/train.py runs it: runtime.describe_device,
     resolve_precision/set_precision (train.precision), seed_everything,
     distribution_scope, models.build_cnn + compile_model, training.fit.

Every run is its own subprocess: a fresh TensorFlow, and its own memory figures. Peak
memory is the process's RSS high-water mark (VmHWM) over fit() alone (reset through
/proc/self/clear_refs just before fit; ru_maxrss of the whole process where that is not
possible), next to the RSS before fit (interpreter, TensorFlow, data, model).

Images/s is wall clock over the epochs after the first (which pays for tracing);
with one epoch (the full Fashion-MNIST run) it is the epoch after its first 10% of
batches. CPU images/s divides by the process's CPU time instead (all threads), a figure
that moves less when other processes compete for the cores.

Then the pipeline as a user meets it, in a temporary git copy of the tracked files:
`dvc repro` from an empty cache, a no-op `dvc repro`, `dvc exp run -S train.lr=0.01`.

Raw results go to benchmarks/results/<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
RESULTS = ROOT / "benchmarks" / "results"
FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
BUNDLED = ROOT / "data" / "bundled" / "mnist-sample"
KFOLD_JSON = ROOT / "metrics" / "kfold.json"
DEFAULT_EPOCHS = 11  # what the kfold stage chose on the default data (metrics/kfold.json)
VENV_BIN = Path(sys.executable).parent


# ====================================================================== worker (one run)
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def worker(spec: dict) -> dict:
    """Train once (spec["path"]: A or B) and return the figures; runs in a subprocess."""
    for key, value in spec.get("env", {}).items():
        os.environ[key] = str(value)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from cnnstudy import runtime
    from cnnstudy.params import load_params

    cfg = load_params().train
    runtime.select_device(cfg.device)  # environment only (backend name, hidden GPUs)
    knobs = spec.get("knobs", {})
    if "threads" in knobs:
        import tensorflow as tf

        intra, inter = knobs["threads"]
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras

    with np.load(spec["data"]) as npz:
        data = {k: npz[k] for k in npz.files}
    train = (data["train_images"], data["train_labels"])
    val = (data["val_images"], data["val_labels"]) if "val_images" in data else None
    test = (data["test_images"], data["test_labels"])
    timer = bench_timer(keras, batch_times=spec.get("batch_timer", False))
    rss = {"rss_before_fit_mb": (_status_kb("VmRSS") or 0) / 1024}
    out: dict = {}
    if spec["path"] == "A":
        keras.utils.set_random_seed(cfg.seed)
        model = _reference_model(keras, cfg)
        model.compile(optimizer=_reference_optimizer(keras, cfg), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])

        def as_float(images):  # the reports' preprocessing: float32 in [0, 1], channel axis
            return (images.astype("float32") / 255.0)[..., None]

        x_train, x_test = as_float(train[0]), as_float(test[0])
        validation = None if val is None else (as_float(val[0]), val[1])
        rss["rss_before_fit_mb"] = (_status_kb("VmRSS") or 0) / 1024
        reset = _reset_peak_rss()
        start = time.perf_counter()
        model.fit(x_train, train[1], batch_size=cfg.batch_size, epochs=spec["epochs"], validation_data=validation,
                  callbacks=[timer], verbose=0)
        fit_s = time.perf_counter() - start
        peak = _status_kb("VmHWM")
        loss, accuracy = model.evaluate(x_test, test[1], verbose=0)
        out.update(precision="float32", steps_per_execution=1, validation_batch_size=cfg.batch_size)
    else:
        from cnnstudy import training
        from cnnstudy.models import build_cnn, compile_model

        if "steps_per_execution" in knobs:
            training.STEPS_PER_EXECUTION = knobs["steps_per_execution"]
        if "validation_batch" in knobs:
            training.VALIDATION_BATCH = knobs["validation_batch"]
        device = runtime.describe_device(cfg.device)
        precision = runtime.resolve_precision(knobs.get("precision", cfg.precision), device["device"])
        runtime.set_precision(precision)
        runtime.seed_everything(cfg.seed)
        if knobs.get("float_input"):  # uint8 converted up front instead of inside the model
            train = (train[0].astype("float32"), train[1])
            val = None if val is None else (val[0].astype("float32"), val[1])
        with runtime.distribution_scope(device) as parallel:
            model = compile_model(build_cnn(cfg), cfg)
            if knobs.get("jit_compile"):
                model.jit_compile = True
            rss["rss_before_fit_mb"] = (_status_kb("VmRSS") or 0) / 1024
            reset = _reset_peak_rss()
            start = time.perf_counter()
            result = training.fit(model, cfg, train, val, spec["epochs"], callbacks=[timer])
            fit_s = time.perf_counter() - start
            peak = _status_kb("VmHWM")
            loss, accuracy = model.evaluate(training.as_model_input(test[0]), test[1], verbose=0)
        out.update(precision=precision, **result.extra, **parallel)
    images = len(train[1])
    wall, cpu = timer.wall, timer.cpu
    out.update(
        path=spec["path"], epochs=len(wall), images=images, fit_s=fit_s,
        epoch_s=wall, epoch_cpu_s=cpu, first_epoch_s=wall[0],
        images_per_s=images * (len(wall) - 1) / sum(wall[1:]) if len(wall) > 1 else timer.steady(images, cfg.batch_size),
        cpu_images_per_s=(images * (len(cpu) - 1) / sum(cpu[1:]) if len(cpu) > 1
                          else timer.steady(images, cfg.batch_size, cpu=True)),
        whole_run_images_per_s=images * len(wall) / sum(wall),
        best_epoch_images_per_s=images / min(wall[1:]) if len(wall) > 1 else None,
        test_accuracy=float(accuracy), test_loss=float(loss),
        peak_rss_fit_mb=(peak / 1024) if (reset and peak) else None,
        ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        peak_measure="VmHWM over fit (clear_refs)" if reset and peak else "ru_maxrss (whole process)",
        **rss,
    )
    if len(wall) == 1:
        out["steady_note"] = "one epoch: images/s over the epoch after its first 10% of batches"
    return out


def bench_timer(keras, batch_times: bool = False):
    """A callback with wall and CPU seconds per epoch and, if asked, the time of every batch end."""

    class BenchTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu, self.batches = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._wall, self._cpu = time.perf_counter(), time.process_time()
            self.batches = []

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._wall)
            self.cpu.append(time.process_time() - self._cpu)

        def steady(self, images: int, batch_size: int, cpu: bool = False) -> float | None:
            """Images/s (wall or CPU time) within the last epoch after its first 10% of batches
            (batch_times only)."""
            marks = self.batches
            if len(marks) < 3:
                return None
            steps = marks[-1][0] + 1
            start = next(m for m in marks if m[0] + 1 >= 0.1 * steps)
            if start is marks[-1]:
                return None
            done = lambda step: min(images, (step + 1) * batch_size)  # noqa: E731
            clock = 2 if cpu else 1
            return (done(marks[-1][0]) - done(start[0])) / (marks[-1][clock] - start[clock])

    class BatchTimer(BenchTimer):
        def on_train_batch_end(self, batch, logs=None):  # with several steps per call: the call's last step
            self.batches.append((batch, time.perf_counter(), time.process_time()))

    return BatchTimer() if batch_times else BenchTimer()


def _reference_model(keras, cfg):
    if cfg.batch_norm or cfg.augment:
        raise SystemExit("bench: the reference A mirrors the plain baseline; set train.batch_norm and "
                         "train.augment to false")
    layers = [keras.Input((28, 28, 1))]
    for filters in cfg.filters:
        layers += [keras.layers.Conv2D(filters, cfg.kernel_size, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D(2)]
    layers += [keras.layers.Flatten(), keras.layers.Dense(cfg.dense_units, activation="relu"),
               keras.layers.Dropout(cfg.dropout), keras.layers.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


def _reference_optimizer(keras, cfg):
    return {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
            "rmsprop": keras.optimizers.RMSprop}[cfg.optimizer](learning_rate=cfg.lr)


# ====================================================================== orchestration
def run_worker(spec: dict, label: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench: run {label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["load_avg_1min_after"] = os.getloadavg()[0]
    return result


def write_arrays(path: Path, **splits) -> Path:
    import numpy as np

    arrays = {}
    for name, (images, labels) in splits.items():
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = images, labels
    np.savez(path, **arrays)
    return path


def sample_data(tmp: Path) -> tuple[Path, str]:
    """The default 6,000-image subset, split exactly as the prepare stage splits it."""
    from cnnstudy.datasets import DIGITS, FILENAMES
    from cnnstudy.idx import read_pair
    from cnnstudy.params import load_params
    from cnnstudy.prepare import split_dataset

    params = load_params().prepare
    train = read_pair(BUNDLED / FILENAMES["train_images"], BUNDLED / FILENAMES["train_labels"])
    test = read_pair(BUNDLED / FILENAMES["test_images"], BUNDLED / FILENAMES["test_labels"])
    splits = split_dataset(*train, *test, params, DIGITS)
    path = write_arrays(tmp / "sample.npz", **{name: (s.images, s.labels) for name, s in splits.items()})
    counts = ", ".join(f"{name} {len(s.labels)}" for name, s in splits.items())
    return path, f"bundled MNIST sample, prepare params of params.yaml ({counts})"


def fashion_data(tmp: Path) -> tuple[Path, str] | None:
    from cnnstudy.datasets import FILENAMES
    from cnnstudy.idx import read_pair

    if not all((FASHION / FILENAMES[role]).is_file() for role in FILENAMES):
        return None
    train = read_pair(FASHION / FILENAMES["train_images"], FASHION / FILENAMES["train_labels"])
    test = read_pair(FASHION / FILENAMES["test_images"], FASHION / FILENAMES["test_labels"])
    path = write_arrays(tmp / "fashion.npz", train=train, test=test)
    return path, f"Fashion-MNIST from {FASHION} (train {len(train[1])}, test {len(test[1])}, no validation)"


def run_pairs(name: str, data: Path, epochs: int, pairs: int, batch_timer: bool = False) -> dict:
    runs = []
    for i in range(pairs):
        order = ("A", "B") if i % 2 == 0 else ("B", "A")
        pair = {}
        for path in order:
            label = f"{name} pair {i + 1}/{pairs} {path}"
            print(f"  {label} ...", end="", flush=True)
            result = run_worker({"path": path, "data": str(data), "epochs": epochs, "batch_timer": batch_timer},
                                label)
            print(f" {result['images_per_s']:,.0f} images/s, first epoch {result['first_epoch_s']:.1f} s, "
                  f"test accuracy {result['test_accuracy']:.2%}", flush=True)
            pair[path] = result
        runs.append(pair)
    return {"epochs": epochs, "pairs": runs, "summary": summarise(runs)}


def _mmm(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for path in ("A", "B"):
        rs = [pair[path] for pair in runs]
        out[path] = {key: _mmm([r[key] for r in rs]) for key in (
            "images_per_s", "cpu_images_per_s", "best_epoch_images_per_s", "first_epoch_s", "test_accuracy", "peak_rss_fit_mb",
            "rss_before_fit_mb", "ru_maxrss_mb")}
        out[path]["precision"] = rs[0]["precision"]
    out["ratio_B_over_A"] = _mmm([p["B"]["images_per_s"] / p["A"]["images_per_s"] for p in runs])
    for key, name in (("cpu_images_per_s", "cpu_ratio_B_over_A"), ("best_epoch_images_per_s", "best_epoch_ratio_B_over_A")):
        if all(p["A"][key] and p["B"][key] for p in runs):
            out[name] = _mmm([p["B"][key] / p["A"][key] for p in runs])
    out["accuracy_diff_points_B_minus_A"] = _mmm(
        [100 * (p["B"]["test_accuracy"] - p["A"]["test_accuracy"]) for p in runs])
    return out


def _f(value, fmt="{:,.0f}"):
    return "n/a" if value is None else fmt.format(value)


def print_training_table(title: str, block: dict) -> None:
    s = block["summary"]
    print(f"\n#### {title}\n")
    print("| pair | A images/s | B images/s | B/A | A CPU images/s | B CPU images/s | A first epoch s | "
          "B first epoch s | A test acc | B test acc | A peak RSS MB | B peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, pair in enumerate(block["pairs"], start=1):
        a, b = pair["A"], pair["B"]
        print(f"| {i} | {_f(a['images_per_s'])} | {_f(b['images_per_s'])} | "
              f"{b['images_per_s'] / a['images_per_s']:.2f} | {_f(a['cpu_images_per_s'])} | "
              f"{_f(b['cpu_images_per_s'])} | {a['first_epoch_s']:.2f} | {b['first_epoch_s']:.2f} | "
              f"{a['test_accuracy']:.2%} | {b['test_accuracy']:.2%} | {_f(a['peak_rss_fit_mb'])} | "
              f"{_f(b['peak_rss_fit_mb'])} |")
    r = s["ratio_B_over_A"]
    print(f"\nB/A images/s over {len(block['pairs'])} pairs: min {r['min']:.2f}, median {r['median']:.2f}, "
          f"max {r['max']:.2f}")
    for key, name in (("cpu_ratio_B_over_A", "B/A CPU-time images/s"), ("best_epoch_ratio_B_over_A",
                                                                          "B/A fastest epoch's images/s")):
        if key in s:
            c = s[key]
            print(f"{name}: min {c['min']:.2f}, median {c['median']:.2f}, max {c['max']:.2f}")
    d = s["accuracy_diff_points_B_minus_A"]
    print(f"test accuracy B - A (points): min {d['min']:+.2f}, median {d['median']:+.2f}, max {d['max']:+.2f}")
    print(f"A: {s['A']['precision']}, peak RSS over fit median {_f(s['A']['peak_rss_fit_mb']['median'])} MB "
          f"(RSS before fit {_f(s['A']['rss_before_fit_mb']['median'])} MB); "
          f"B: {s['B']['precision']}, {_f(s['B']['peak_rss_fit_mb']['median'])} MB "
          f"({_f(s['B']['rss_before_fit_mb']['median'])} MB)")


# ---------------------------------------------------------------------- sweep
SWEEP = {  # name: (path, knobs, env) -- each against B as configured
    "B (as configured)": ("B", {}, {}),
    "A reference": ("A", {}, {}),
    "B float32": ("B", {"precision": "float32"}, {}),
    "B one step per call": ("B", {"steps_per_execution": 1}, {}),
    "B validation batch 1024": ("B", {"validation_batch": 1024}, {}),
    "B float32 input (not uint8)": ("B", {"float_input": True}, {}),
    "B XLA (jit_compile)": ("B", {"jit_compile": True}, {}),
    "B threads intra 2 inter 1": ("B", {"threads": [2, 1]}, {}),
    "B threads intra 1 inter 1": ("B", {"threads": [1, 1]}, {}),
    "B mixed_float16": ("B", {"precision": "mixed_float16"}, {}),
    "B float32, oneDNN fpmath bf16": ("B", {"precision": "float32"}, {"ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}),
    "B bf16 without AVX512-BF16 (oneDNN ISA cap)": ("B", {"precision": "mixed_bfloat16"},
                                                    {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}),
    "B oneDNN off": ("B", {}, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
}


def run_sweep(data: Path, epochs: int, rounds: int, only: list[str] | None = None) -> dict:
    chosen = [name for name in SWEEP if not only or any(o.lower() in name.lower() for o in only)]
    results: dict[str, list] = {name: [] for name in chosen}
    for r in range(rounds):
        names = chosen if r % 2 == 0 else list(reversed(chosen))
        for name in names:
            path, knobs, env = SWEEP[name]
            print(f"  sweep round {r + 1}/{rounds}: {name} ...", end="", flush=True)
            res = run_worker({"path": path, "data": str(data), "epochs": epochs, "knobs": knobs, "env": env}, name)
            print(f" {res['images_per_s']:,.0f} images/s ({res['cpu_images_per_s']:,.0f} per CPU s), "
                  f"test accuracy {res['test_accuracy']:.2%}", flush=True)
            results[name].append(res)
    print(f"\n#### Option sweep ({epochs} epochs, {rounds} rounds, medians)\n")
    print("| configuration | precision | images/s | CPU images/s | first epoch s | test acc |")
    print("|---|---|---|---|---|---|")
    for name, rs in results.items():
        print(f"| {name} | {rs[0]['precision']} | {_f(_mmm([r['images_per_s'] for r in rs])['median'])} | "
              f"{_f(_mmm([r['cpu_images_per_s'] for r in rs])['median'])} | "
              f"{_mmm([r['first_epoch_s'] for r in rs])['median']:.2f} | "
              f"{_mmm([r['test_accuracy'] for r in rs])['median']:.2%} |")
    return {"epochs": epochs, "rounds": rounds, "runs": results}


# ---------------------------------------------------------------------- dvc
def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args], cwd=cwd,
                   check=True, capture_output=True, text=True)


def _timed(args: list[str], cwd: Path, label: str, progress: bool) -> dict:
    """Run a dvc command, echo the stages it runs with elapsed times; return what ran and how long."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stages, tail = [], []
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-40:]
        match = re.match(r"Running stage '([^']+)'", line.strip())
        if match:
            now = time.perf_counter() - start
            if stages:
                stages[-1]["seconds"] = round(now - stages[-1]["started_s"], 1)
            stages.append({"stage": match.group(1), "started_s": round(now, 1)})
            if progress:
                print(f"    [{now:7.1f} s] {label}: running {match.group(1)}", flush=True)
    code = proc.wait()
    total = time.perf_counter() - start
    if stages:
        stages[-1]["seconds"] = round(total - stages[-1]["started_s"], 1)
    out = {"command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(args)), "seconds": round(total, 2),
           "exit_code": code, "stages_run": [s["stage"] for s in stages], "stage_seconds": stages}
    if code != 0:
        out["error_tail"] = tail[-15:]
    return out


def _copy_repo(root: Path, worktree: bool) -> str:
    """The tracked files: as committed (HEAD, what a clean clone has) or as in the work tree."""
    if worktree:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split("\n")
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, root / name)
        source = "work tree (tracked files)"
    else:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        source = "HEAD " + subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                          text=True, check=True).stdout.strip()
    _git("init", "-q", "-b", "main", cwd=root)
    _git("add", "-A", cwd=root)
    _git("commit", "-qm", "bench copy", cwd=root)
    return source


def dvc_timings(worktree: bool = False, fallback_lr: str = "0.002", progress: bool = True,
                keep: bool = False) -> dict:
    root = Path(tempfile.mkdtemp(prefix="cnnstudy-bench-dvc-"))
    try:
        source = _copy_repo(root, worktree)
        dvc = str(VENV_BIN / "dvc")
        print(f"  copy of {source} in {root}", flush=True)
        print("  dvc repro from an empty cache (long: every stage runs) ...", flush=True)
        full = _timed([dvc, "repro"], root, "repro", progress)
        print(f"  full repro: {full['seconds']:.0f} s, exit {full['exit_code']}, {len(full['stages_run'])} stages")
        out = {"source": source, "full_repro": full}
        if full["exit_code"] != 0:
            print("    " + "\n    ".join(full.get("error_tail", [])))
            return out
        for name in ("metrics/kfold.json", "metrics/eval/baseline.json"):
            try:
                out.setdefault("results", {})[name] = json.loads((root / name).read_text())
            except (OSError, ValueError):
                pass
        kfold, base = out.get("results", {}).get("metrics/kfold.json", {}), out.get("results", {}).get(
            "metrics/eval/baseline.json", {})
        out["results"] = {"chosen_epochs": kfold.get("chosen_epochs"), "baseline_test_accuracy": base.get("accuracy")}
        train_json = root / "metrics" / "train" / "baseline.json"
        if train_json.exists():
            trained = json.loads(train_json.read_text())
            out["results"].update({k: trained.get(k) for k in ("precision", "strategy", "replicas", "images_per_s",
                                                               "first_epoch_s", "epochs")})
        print(f"  pipeline result: {out['results']}")
        _git("add", "-A", cwd=root)
        _git("commit", "-qm", "bench results", cwd=root)
        noop = [_timed([dvc, "repro"], root, "no-op", progress) for _ in range(3)]
        out["noop_repro"] = {"runs_s": [n["seconds"] for n in noop], "median_s": statistics.median(
            n["seconds"] for n in noop), "stages_run": sorted({s for n in noop for s in n["stages_run"]})}
        print(f"  no-op repro: {', '.join(f'{n:.2f} s' for n in out['noop_repro']['runs_s'])}; stages run: "
              f"{out['noop_repro']['stages_run'] or 'none'}")
        for lr in ("0.01", fallback_lr):
            print(f"  dvc exp run -S train.lr={lr} ...", flush=True)
            exp = _timed([dvc, "exp", "run", "-S", f"train.lr={lr}"], root, "exp run", progress)
            out[f"exp_run_lr_{lr}"] = exp
            ran = set(exp["stages_run"])
            exp["fetch_or_prepare_ran"] = bool(ran & {"fetch", "prepare"})
            print(f"  exp run -S train.lr={lr}: {exp['seconds']:.0f} s, exit {exp['exit_code']}, "
                  f"{len(ran)} stages ran: {', '.join(exp['stages_run']) or 'none'}")
            if exp["exit_code"] == 0 or not fallback_lr or lr == fallback_lr:
                break
            print("    failed: " + "\n    ".join(line for line in exp.get("error_tail", []) if line.strip())[-600:])
            print(f"    timing a run that passes validation instead: train.lr={fallback_lr}")
        return out
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------- main
def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), None) if Path("/proc/meminfo").exists() else None
    import importlib.metadata as md

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {"cpu": model, "cores": os.cpu_count(), "memory_mb": mem,
            "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}),
            "python": platform.python_version(),
            "tensorflow": version("tensorflow") or version("tensorflow-cpu") or version("tensorflow_cpu"),
            "keras": version("keras"), "dvc": version("dvc"), "load_avg_at_start": os.getloadavg()}


def default_epochs() -> int:
    try:
        chosen = json.loads(KFOLD_JSON.read_text()).get("chosen_epochs")
        return chosen if isinstance(chosen, int) and chosen > 0 else DEFAULT_EPOCHS
    except (OSError, ValueError):
        return DEFAULT_EPOCHS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per data set (default 3)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs on the sample (default: metrics/kfold.json's choice, else {DEFAULT_EPOCHS})")
    parser.add_argument("--full-epochs", type=int, default=1, help="epochs on full Fashion-MNIST (default 1)")
    parser.add_argument("--skip-sample", action="store_true", help="no A/B on the bundled sample")
    parser.add_argument("--skip-full", action="store_true", help="no A/B on full Fashion-MNIST")
    parser.add_argument("--skip-dvc", action="store_true", help="no dvc timings (the full repro is long)")
    parser.add_argument("--sweep", action="store_true", help="also measure each speed option on its own")
    parser.add_argument("--sweep-rounds", type=int, default=2)
    parser.add_argument("--sweep-epochs", type=int, default=5)
    parser.add_argument("--sweep-only", nargs="+", metavar="TEXT",
                        help="only the sweep configurations whose name contains one of these")
    parser.add_argument("--keep-dvc-copy", action="store_true", help="leave the temporary repo copy in place")
    parser.add_argument("--dvc-worktree", action="store_true",
                        help="copy the work tree's tracked files (default: HEAD, as a clean clone has them)")
    parser.add_argument("--exp-fallback-lr", default="0.002",
                        help="if `dvc exp run -S train.lr=0.01` fails, time this value instead (default 0.002)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))))
        return
    if args.pairs < 1:
        parser.error("--pairs must be >= 1")
    epochs = args.epochs or default_epochs()
    if epochs < 2:
        parser.error("--epochs must be >= 2 (steady state is measured after the first epoch)")
    started = dt.datetime.now()
    report: dict = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "worker"}}
    from cnnstudy.params import load_params

    report["train_params"] = load_params().raw["train"]
    m = report["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, {m['memory_mb']} MB, bf16: {', '.join(m['bf16_flags']) or 'none'}; "
          f"TensorFlow {m['tensorflow']}, Keras {m['keras']}; load average {m['load_avg_at_start'][0]:.2f}")
    print("A = plain model.fit on float32 arrays (Keras defaults); B = the project's training path "
          f"(train.precision: {report['train_params']['precision']}). Pairs alternate A B / B A.")
    with tempfile.TemporaryDirectory(prefix="cnnstudy-bench-") as tmp:
        tmp = Path(tmp)
        if not args.skip_sample or args.sweep:
            sample, description = sample_data(tmp)
        if not args.skip_sample:
            print(f"\nSample: {description}; {epochs} epochs, {args.pairs} pairs")
            report["sample"] = {"data": description, **run_pairs("sample", sample, epochs, args.pairs)}
            print_training_table(f"Bundled sample, {epochs} epochs", report["sample"])
        if not args.skip_full:
            fashion = fashion_data(tmp)
            if fashion is None:
                print(f"\nFull Fashion-MNIST: skipped, {FASHION} not found (Debian: apt install dataset-fashion-mnist)")
            else:
                print(f"\nFull: {fashion[1]}; {args.full_epochs} epoch(s), {args.pairs} pairs")
                report["full"] = {"data": fashion[1], **run_pairs("full", fashion[0], args.full_epochs, args.pairs,
                                                                   batch_timer=args.full_epochs == 1)}
                print_training_table(f"Full Fashion-MNIST, {args.full_epochs} epoch(s)", report["full"])
        if args.sweep:
            print(f"\nOption sweep on the sample, {args.sweep_epochs} epochs")
            report["sweep"] = run_sweep(sample, args.sweep_epochs, args.sweep_rounds, args.sweep_only)
    if not args.skip_dvc:
        print("\nDVC pipeline timings")
        report["dvc"] = dvc_timings(worktree=args.dvc_worktree, fallback_lr=args.exp_fallback_lr,
                                    keep=args.keep_dvc_copy)
    report["machine"]["load_avg_at_end"] = os.getloadavg()
    report["seconds"] = round((dt.datetime.now() - started).total_seconds(), 1)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{started:%Y-%m-%dT%H-%M-%S}.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nRaw results: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} "
          f"({report['seconds']:.0f} s in all)")


if __name__ == "__main__":
    main()
