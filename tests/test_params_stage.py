"""The `params` stage guards every result against a bad params.yaml, and params.yaml survives
DVC's own writer (`dvc exp run -S`) again and again."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml

from cnnstudy.params import PARAMS_FILE, REPO_ROOT, load_params
from tiny_project import copy_sources

OVERRIDES = [["train.lr=0.01"], ["variants.lr_high.lr=0.02"], ["+variants.wide.dense=[256]"],
             ["train.filters=[8,16]"], ["compare.keep_models=[lenet5]"], ["compare.max_train_images=100"],
             ["outliers.seeds=[]"], ["compare.models=[lenet5]"], ["train.lr=0.002"], ["compare.keep_models=[]"],
             ["compare.max_train_images=null"], ["fetch.mirrors=[/tmp/x]"], ["prepare.split.train=0.5",
                                                                            "prepare.split.val=0.3"]]


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def test_every_stage_runs_after_params():
    """DVC removes a stage's outputs just before running it: only a stage downstream of `params`
    is protected from a typo. Checked on DVC's own graph of dvc.yaml."""
    from dvc.repo import Repo

    with Repo(str(REPO_ROOT)) as repo:
        graph = repo.index.graph  # edges: stage -> the stages it depends on
        stages = {stage.addressing: stage for stage in graph}
        guard = stages["params"]
        unguarded = [name for name, stage in stages.items() if stage is not guard and not nx.has_path(graph, stage, guard)]
    assert not unguarded


def test_params_yaml_has_end_of_line_comments_only():
    lines = PARAMS_FILE.read_text().splitlines()
    first_key = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert not [line for line in lines[first_key:] if line.lstrip().startswith("#")]


def test_repeated_set_param_keeps_the_file_valid(tmp_path, monkeypatch):
    """Every override through DVC's writer (what `dvc exp run -S` calls), one after the other."""
    from dvc.utils.hydra import apply_overrides
    from dvc.utils.serialize import load_yaml

    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS_FILE, path)
    for override in OVERRIDES:
        apply_overrides(str(path), override)
        load_yaml(str(path))
        load_params(path)
    params = load_params(path)
    assert params.train.lr == 0.002 and params.train.filters == (8, 16) and params.models["wide"].dense == (256,)
    assert params.compare.max_train_images is None and params.prepare.split.val == 0.3
    assert comments(path.read_text()) == comments(PARAMS_FILE.read_text())


# ---------------------------------------------------------------- with real dvc
def run(args, cwd, check=True):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def dvc(*args, cwd, check=True):
    return run([str(Path(sys.executable).parent / "dvc"), *args], cwd, check)


def git(*args, cwd):
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd)


@pytest.fixture
def prepared(tmp_path):
    """A copy of the repo (sources only) where `dvc repro prepare` ran: results committed."""
    copy_sources(tmp_path)
    text = (tmp_path / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text.replace("per_class: 600 ", "per_class: 30  "))
    git("init", "-q", "-b", "main", cwd=tmp_path)
    git("add", "-A", cwd=tmp_path)
    git("commit", "-qm", "sources", cwd=tmp_path)
    dvc("repro", "prepare", cwd=tmp_path)
    git("add", "-A", cwd=tmp_path)
    git("commit", "-qm", "results", cwd=tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for d in ("metrics", "plots") for p in (root / d).rglob("*")
            if p.is_file()}


@pytest.mark.slow
def test_a_bad_params_yaml_stops_dvc_before_any_result_is_removed(prepared):
    before = snapshot(prepared)
    assert "metrics/data.json" in before and "plots/data/class_distribution.csv" in before
    params = prepared / "params.yaml"
    good = params.read_text()
    for typo, message in [(good.replace("  seed: 42\n\nkfold", "  sede: 42\n\nkfold"), "unknown key prepare.sede"),
                          (good.replace("per_class: 30 ", "per_class: 3O "), "prepare.per_class: expected a positive"),
                          (good.replace("batch_size: 128", "batch_size: 1000000000"), "train.batch_size: training")]:
        assert typo != good
        params.write_text(typo)
        proc = dvc("repro", cwd=prepared, check=False)
        assert proc.returncode != 0
        assert message in proc.stdout + proc.stderr
        assert "Running stage 'prepare'" not in proc.stdout
        assert snapshot(prepared) == before  # every cache: false result still there, unchanged
    params.write_text(good)
    out = dvc("repro", "prepare", cwd=prepared).stdout  # the guard's own outputs come back from the cache
    assert "Running stage" not in out and "Stage 'prepare' didn't change" in out
    assert snapshot(prepared) == before


@pytest.mark.slow
def test_one_section_changed_reruns_only_the_params_stage_upstream_of_its_users(prepared):
    text = (prepared / "params.yaml").read_text()
    (prepared / "params.yaml").write_text(text.replace("lr: 0.001", "lr: 0.002"))
    out = dvc("repro", "prepare", cwd=prepared).stdout
    assert "Running stage 'params'" in out
    assert "Running stage 'fetch'" not in out and "Running stage 'prepare'" not in out


@pytest.mark.slow
def test_exp_run_set_param_twice(prepared):
    """`dvc exp run -S` rewrites params.yaml with DVC's writer; the next -S must still read it."""
    for seed in (7, 8):
        dvc("exp", "run", "prepare", "-S", f"prepare.seed={seed}", "-S", "train.filters=[8,16]", cwd=prepared)
        params = load_params(prepared / "params.yaml")
        assert params.prepare.seed == seed and params.train.filters == (8, 16)
    assert yaml.safe_load((prepared / "metrics/data.json").read_text())["images"]["train"] == 180
    assert comments((prepared / "params.yaml").read_text()) == comments(PARAMS_FILE.read_text().replace(
        "per_class: 600 ", "per_class: 30  "))
