"""Training speed and pipeline timings: `make bench` (or .venv/bin/python benchmarks/bench.py --help).

Training, A against B, on the same data, epochs and seed, alternated pair by pair
(A B, then B A, ...) so that other load on the machine hits both alike:

  A  the reference: plain `model.fit` on float32 NumPy arrays scaled to [0, 1], a
     Sequential model with the baseline's layers and no Rescaling layer, Keras defaults
     for everything the course reports did not set (float32, no XLA, default threads,
     validation at the training batch size). Same batch size, optimizer and learning
     rate as params.yaml's `train:` (the baseline).
  B  the project's path, as stages/train.py runs it: runtime.describe_device,
     resolve_precision/set_precision (train.precision), distribution_scope,
     train_cnn.new_cnn (seed, build, compile), training.fit.

The runs: bench_worker.py; the DVC timings: bench_dvc.py.

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
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
BUNDLED = ROOT / "data" / "bundled" / "mnist-sample"
KFOLD_JSON = ROOT / "metrics" / "kfold.json"
DEFAULT_EPOCHS = 11  # what the kfold stage chose on the default data (metrics/kfold.json)
VENV_BIN = Path(sys.executable).parent


# ====================================================================== worker (one run)
def write_arrays(path: Path, **splits) -> Path:
    import numpy as np

    arrays = {}
    for name, (images, labels) in splits.items():
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = images, labels
    np.savez(path, **arrays)
    return path


def sample_data(tmp: Path) -> tuple[Path, str]:
    """The default 6,000-image subset, split exactly as the prepare stage splits it."""
    from cnnstudy.registry import DIGITS, FILENAMES
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
    from cnnstudy.registry import FILENAMES
    from cnnstudy.idx import read_pair

    if not all((FASHION / FILENAMES[role]).is_file() for role in FILENAMES):
        return None
    train = read_pair(FASHION / FILENAMES["train_images"], FASHION / FILENAMES["train_labels"])
    test = read_pair(FASHION / FILENAMES["test_images"], FASHION / FILENAMES["test_labels"])
    path = write_arrays(tmp / "fashion.npz", train=train, test=test)
    return path, f"Fashion-MNIST from {FASHION} (train {len(train[1])}, test {len(test[1])}, no validation)"


# ---------------------------------------------------------------------- main
# Sibling scripts: Python puts benchmarks/ on the path when it runs this file.
from bench_ab import print_training_table, run_pairs, run_sweep  # noqa: E402
from bench_dvc import dvc_timings  # noqa: E402
from bench_models import run_models  # noqa: E402


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
    parser.add_argument("--skip-models", action="store_true",
                        help="no per-model images per CPU-second / GFLOP/s (baseline + compare.models)")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="models for that (default: baseline + compare.models)")
    parser.add_argument("--model-pairs", type=int, default=1, help="today/project pairs per model (default 1)")
    parser.add_argument("--model-batch", type=int, help="also time the standard models at this batch size")
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
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be >= 1")
    epochs = args.epochs or default_epochs()
    if epochs < 2:
        parser.error("--epochs must be >= 2 (steady state is measured after the first epoch)")
    started = dt.datetime.now()
    report: dict = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    from cnnstudy.params import load_params

    report["train_params"] = load_params().raw["train"]
    m = report["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, {m['memory_mb']} MB, bf16: {', '.join(m['bf16_flags']) or 'none'}; "
          f"TensorFlow {m['tensorflow']}, Keras {m['keras']}; load average {m['load_avg_at_start'][0]:.2f}")
    print("A = plain model.fit on float32 arrays (Keras defaults); B = the project's training path "
          f"(train.precision: {report['train_params']['precision']}). Pairs alternate A B / B A.")
    with tempfile.TemporaryDirectory(prefix="cnnstudy-bench-") as tmp:
        tmp = Path(tmp)
        if not args.skip_sample or args.sweep or not args.skip_models:
            sample, description = sample_data(tmp)
        if not args.skip_sample:
            print(f"\nSample: {description}; {epochs} epochs, {args.pairs} pairs")
            report["sample"] = {"data": description, **run_pairs("sample", sample, epochs, args.pairs)}
            print_training_table(f"Bundled sample, {epochs} epochs", report["sample"])
        if not args.skip_models:
            models = args.models or ["baseline", *load_params().compare.models]
            print(f"\nModels: today (TF default kernels) vs project (oneDNN on), {args.model_pairs} pair(s)")
            report["models"] = run_models(sample, models, args.model_pairs, args.model_batch)
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
