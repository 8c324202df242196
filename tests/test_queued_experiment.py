"""A queued experiment on the session's tiny project (tests/tiny_project.py): a variant added
from the command line, run by `dvc queue start` in a temp copy that holds only what git
tracks, gets its own train/evaluate/inspect stages and joins every table; the workspace keeps
HEAD's results."""

import json
import time

import pytest

from tiny_project import VARIANTS, dvc, tiny_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return tiny_project(tmp_path_factory, "queued")


def test_queued_experiment_adding_a_variant(repo):
    dvc("exp", "run", "--queue", "-S", "+variants.dense_wide.dense=[32]", "-n", "queued-variant", cwd=repo)
    dvc("queue", "start", "-j", "1", cwd=repo)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = dvc("queue", "status", cwd=repo)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Success" in status, status
    (entry,) = [e for e in mappings(json.loads(dvc("exp", "show", "--json", cwd=repo)))
                if e.get("name") == "queued-variant" and "data" in e]
    models = entry["data"]["metrics"]["metrics/models.json"]["data"]
    assert list(models) == [*VARIANTS, "dense_wide", "tuned"]
    assert models["baseline"] == json.loads((repo / "metrics" / "models.json").read_text())["baseline"]
    assert not (repo / "models" / "dense_wide.keras").exists()  # the queue ran in a temp copy
    assert "Data and pipelines are up to date" in dvc("status", cwd=repo)


def mappings(tree):
    """Every mapping at any depth of a JSON tree (`dvc exp show --json` nests experiments)."""
    if isinstance(tree, dict):
        yield tree
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            yield from mappings(item)
