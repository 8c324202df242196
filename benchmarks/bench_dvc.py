"""The pipeline as a user meets it, timed in a temporary git copy of the tracked files:
`dvc repro` from an empty cache, a no-op `dvc repro`, `dvc exp run -S train.lr=0.01`."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


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
