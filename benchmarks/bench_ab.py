"""A against B (see bench.py): alternated pairs, their summary and tables, and the sweep
that measures each speed option on its own."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench_worker import run_worker


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
