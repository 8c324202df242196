"""A queued experiment on the tiny project (tests/tiny_project.py): the README's
`-S train.lr=0.01` plus a variant added from the command line, run by `dvc queue start` in a
temp copy that holds only what git tracks.

It starts from the project's source commit, without results, so it runs beside the session's
`dvc repro` of the same project instead of waiting for it; the two are compared at the end.
"""

import json
import time

import pytest

from tiny_project import built_project, dvc, source_repo

pytestmark = pytest.mark.slow


def test_queued_experiment_changes_the_baseline_and_adds_a_variant(tmp_path, tmp_path_factory):
    repo = source_repo(tmp_path)
    dvc("exp", "run", "--queue", "-S", "train.lr=0.01", "-S", "+variants.dense_wide.dense=[32]",
        "-n", "queued-lr", cwd=repo)
    dvc("queue", "start", "-j", "1", cwd=repo)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = dvc("queue", "status", cwd=repo)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Success" in status, status
    assert not (repo / "models").exists()  # the queue ran in a temp copy: the workspace is untouched
    (entry,) = [e for e in mappings(json.loads(dvc("exp", "show", "--json", cwd=repo)))
                if e.get("name") == "queued-lr" and "data" in e]
    data = entry["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["lr"] == 0.01
    models = data["metrics"]["metrics/models.json"]["data"]
    assert list(models) == ["baseline", "lr_high", "dense_wide", "tuned"]
    # Against the same project at lr 0.001 (the session's dvc repro): the baseline trained anew.
    reference = json.loads((built_project(tmp_path_factory) / "metrics" / "models.json").read_text())
    assert models["baseline"]["loss"] != reference["baseline"]["loss"]


def mappings(tree):
    """Every mapping at any depth of a JSON tree (`dvc exp show --json` nests experiments)."""
    if isinstance(tree, dict):
        yield tree
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            yield from mappings(item)
