"""The project with a tiny configuration, reproduced once per test session and shared.

Three modules test the real dvc.yaml end to end (test_pipeline, test_experiments,
test_queued_experiment). Its `dvc repro` is the suite's longest step, so it runs once: the
first module to ask builds it under a lock in the session's shared temp folder (every
pytest-xdist worker sees the same one), and each module works on a copy of its own (git
history, DVC cache and all), so no module sees another's experiments.

The tiny run keeps five classes (prepare.classes), so the same run also shows every stage
following a class subset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from filelock import FileLock

from cnnstudy.params import REPO_ROOT

KEPT = [3, 5, 8, 0, 9]  # prepare.classes of the tiny run, renumbered 0..4 in this order
VARIANTS = ("baseline", "lr_high")
GENERATED = ("dvc.lock", "metrics/", "plots/", "dvclive/", "models/", "data/raw/", "data/prepared/", "reports/")
DVC = str(Path(sys.executable).parent / "dvc")


def tiny_params() -> dict:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["prepare"].update(per_class=30, classes=KEPT)
    params["kfold"].update(folds=2, max_epochs=2, patience=1)
    params["train"].update(filters=[4, 8], dense=[16], batch_size=32)
    params["variants"] = {"baseline": {}, "lr_high": {"lr": 0.01}}
    params["outliers"].update(repeats=2, seeds=[])
    params["compare"].update(models=["lenet5"], epochs=1, max_train_images=100)
    params["sweep"].update(space={"optimizer": ["adam"], "lr": [0.001, 0.01]}, search="grid", epochs=2,
                           heatmap=["optimizer", "lr"])
    params["tuned"].update(select="sweep")  # epochs from the best trial's curve (tests/test_tuned.py: a fit of its own)
    return params


def run(args, cwd, env_extra=None, **kw) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(env_extra or {})}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def dvc(*args, cwd) -> str:
    return run([DVC, *args], cwd)


def git(*args, cwd) -> str:
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd)


def copy_sources(root: Path) -> Path:
    """The project's source files (what git tracks, or would: no generated outputs) copied to `root`."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if name.startswith(GENERATED) or not (REPO_ROOT / name).is_file():
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, root / name)
    return root


def build(root: Path) -> Path:
    """A git repo at `root`: the project's sources with tiny params, committed, reproduced, and its
    results committed."""
    copy_sources(root)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "tiny", cwd=root)
    dvc("repro", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "results", cwd=root)
    return root


def built_project(tmp_path_factory) -> Path:
    """The session's reproduced tiny project (built by the first caller; the others wait).
    Read it, never change it: tiny_project gives a copy to work on."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: one folder per session
    built = shared / "tiny-project"
    with FileLock(str(shared / "tiny-project.lock")):
        if not (built / ".done").is_file():
            shutil.rmtree(built, ignore_errors=True)  # a build cut off half-way is started again
            built.mkdir()
            build(built)
            (built / ".done").write_text("")
    return built


def tiny_project(tmp_path_factory, name: str) -> Path:
    """A private copy of the session's reproduced tiny project."""
    built = built_project(tmp_path_factory)
    copy = tmp_path_factory.mktemp(name) / "repo"
    shutil.copytree(built, copy, symlinks=True, ignore=shutil.ignore_patterns(".done"))
    assert "Data and pipelines are up to date" in dvc("status", cwd=copy)
    return copy
