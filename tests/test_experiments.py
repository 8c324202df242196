"""Experiments on the session's tiny project (tests/tiny_project.py): a change to `train`
reaches every stage that trains with it, `dvc exp run -S` on one variant re-runs only that
variant's stages, `dvc exp show` fits a terminal and `dvc metrics diff` shows what moved."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from tiny_project import dvc, git, run, tiny_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return tiny_project(tmp_path_factory, "experiments")


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_a_train_change_reaches_every_stage_that_trains_with_it(repo):
    """What `dvc exp run -S train.lr=0.01` would re-run, from `dvc repro --dry` (the stages whose
    own dependencies changed; those downstream of them follow their outputs). Running it for
    real re-trains every model: a few minutes even here, for what the dry run already shows."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["lr"] = 0.01
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = ran_stages(dvc("repro", "--dry", cwd=repo))
    assert {"kfold", "train@baseline", "train@lr_high", "sweep", "tuned", "retrain"} <= ran
    assert not ran & {"fetch", "prepare", "compare"}  # they never read train
    git("checkout", "--", "params.yaml", cwd=repo)
    assert "Data and pipelines are up to date" in dvc("status", cwd=repo)


def test_changing_one_variant_reruns_only_that_variant(repo):
    before = json.loads((repo / "metrics" / "train" / "lr_high.json").read_text())
    out = dvc("exp", "run", "-S", "variants.lr_high.lr=0.02", cwd=repo)
    ran = ran_stages(out)
    assert {"train@lr_high", "evaluate", "inspect_models", "summary"} <= ran
    assert not ran & {"fetch", "prepare", "kfold", "train@baseline", "sweep", "tuned", "retrain", "compare"}
    # one process inspects every model, and redraws only the one whose files changed
    assert re.search(r"inspect_models: lr_high: \d+ mistakes", out), out[-3000:]
    assert "inspect_models: baseline: inputs unchanged, kept" in out and "lenet5: inputs unchanged, kept" in out
    after = json.loads((repo / "metrics" / "train" / "lr_high.json").read_text())
    assert after["train_loss"] != before["train_loss"]
    # The workspace holds the experiment: `dvc metrics diff` against HEAD names the variant's figures.
    diffs = json.loads(dvc("metrics", "diff", "--json", cwd=repo))
    diff = diffs["metrics/models.json"]
    assert "lr_high.loss" in diff and not any(key.startswith("baseline.") for key in diff)
    # What changed fits a 200-column terminal: the parameter and that model's few metrics. Only
    # those that moved: on a test set this small lr_high's accuracy may come out the same.
    changed = {key for file in diffs.values() for key, values in file.items() if values.get("old") != values.get("new")}
    wanted = {"lr_high.accuracy", "lr_high.loss", "lr_high.f1_macro", "lr_high.auroc_msp"} & changed
    shown = run([str(Path(sys.executable).parent / "dvc"), "exp", "show", "--only-changed", "--no-pager"], repo,
                env_extra={"COLUMNS": "200"})
    # (Rich drops what does not fit with "…": here only the hash columns of changed files.)
    header = set(next(line for line in shown.splitlines() if "Experiment" in line).split())
    assert wanted | {"variants.lr_high.lr"} <= header, shown
    assert not any(column.startswith("baseline.") for column in header), shown
    assert max(map(len, shown.splitlines())) <= 200
