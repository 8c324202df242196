"""Sweep throughput: the same trials on Ray Tune (stage sweep's path) and one after another in one process.

    .venv/bin/python benchmarks/sweep_bench.py [--epochs N] [--small] [--address HOST:PORT]

The trials are params.yaml's sweep grid (or random/TPE draws) on data/prepared's train and
validation splits (`dvc repro prepare` first). The Ray side runs through run_sweep with an
empty, temporary cache, so every trial trains: start-up of Ray and of each worker's
TensorFlow is counted, as a user pays it. The sequential side calls the same trial
function (sweep_trial.run_trial) in this process, one trial after another, with all cores.
Both print trials per minute; the ratio is Ray's over sequential (>1: the sweep is faster).
--small shrinks the model (filters 8-16, dense 32) to measure orchestration more than training.
Raw results go to benchmarks/results/sweep-<date>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from cnnstudy.data import load_splits
from cnnstudy.files import write_json
from cnnstudy.params import load_params
from cnnstudy.sweep_cache import TrialCache
from cnnstudy.sweep_run import run_sweep
from cnnstudy.sweep_space import explicit_overrides, trial_config
from cnnstudy.sweep_trial import run_trial

# None of the imports above starts Keras; these must be set before something does.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data" / "prepared"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: sweep.epochs)")
    parser.add_argument("--small", action="store_true", help="a small model: filters 8-16, dense 32")
    parser.add_argument("--address", default=None, help="a Ray cluster instead of a local Ray")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    sweep, train = params.sweep, params.train
    if args.epochs:
        sweep = dataclasses.replace(sweep, epochs=args.epochs)
    if args.address is not None:
        sweep = dataclasses.replace(sweep, address=args.address)
    if args.small:
        train = dataclasses.replace(train, filters=(8, 16), dense=(32,))
    if sweep.search == "optuna":
        raise SystemExit("sweep_bench: needs search grid or random (a fixed list of trials to run both ways)")
    overrides = explicit_overrides(sweep, train.seed)
    print(f"sweep_bench: {len(overrides)} trials x {sweep.epochs} epochs, {os.cpu_count()} CPUs, "
          f"{sweep.cpu} CPU per Ray trial")

    with tempfile.TemporaryDirectory() as cache_dir:
        started = time.perf_counter()
        outcome = run_sweep(sweep, train, DATA_DIR, TrialCache(cache_dir), log=lambda _: None)
        ray_s = time.perf_counter() - started
    assert outcome.trained == len(overrides), "every trial must train in the benchmark"

    _, splits = load_splits(DATA_DIR, ("train", "val"))
    started = time.perf_counter()
    sequential = [run_trial(trial_config(train, o, sweep.epochs), splits["train"], splits["val"], lambda _: None)
                  for o in overrides]
    seq_s = time.perf_counter() - started

    ray_rate, seq_rate = len(overrides) / ray_s * 60, len(overrides) / seq_s * 60
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "trials": len(overrides), "epochs": sweep.epochs, "small_model": args.small,
        "ray": {"seconds": round(ray_s, 1), "trials_per_minute": round(ray_rate, 2), "nodes": len(outcome.nodes),
                "cpu_per_trial": sweep.cpu},
        "sequential": {"seconds": round(seq_s, 1), "trials_per_minute": round(seq_rate, 2)},
        "ratio_ray_over_sequential": round(ray_rate / seq_rate, 2),
        "val_accuracy_ray": [r["val_accuracy"] for r in outcome.rows],
        "val_accuracy_sequential": [r["val_accuracy"] for r in sequential],
        "load_average_1m": os.getloadavg()[0],
    }
    print(json.dumps({k: result[k] for k in ("ray", "sequential", "ratio_ray_over_sequential")}, indent=1))
    write_json(RESULTS / f"sweep-{result['date'].replace(':', '-')}.json", result)


if __name__ == "__main__":
    main()
