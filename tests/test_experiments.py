"""`dvc exp run -S` on the session's tiny project (tests/tiny_project.py): changing one
variant re-runs only that variant's stages, `dvc exp show` fits a terminal and `dvc metrics
diff` shows what moved."""

import json
import re
import sys
from pathlib import Path

import pytest

from tiny_project import dvc, run, tiny_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return tiny_project(tmp_path_factory, "experiments")


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_changing_one_variant_reruns_only_that_variant(repo):
    before = json.loads((repo / "metrics" / "train" / "lr_high.json").read_text())
    ran = ran_stages(dvc("exp", "run", "-S", "variants.lr_high.lr=0.02", cwd=repo))
    assert {"train@lr_high", "evaluate@lr_high", "inspect_model@lr_high", "summary"} <= ran
    assert not ran & {"fetch", "prepare", "kfold", "train@baseline", "evaluate@baseline", "inspect_model@baseline",
                      "sweep", "tuned", "retrain", "compare"}
    after = json.loads((repo / "metrics" / "train" / "lr_high.json").read_text())
    assert after["train_loss"] != before["train_loss"]
    # The workspace holds the experiment: `dvc metrics diff` against HEAD names the variant's figures.
    diff = json.loads(dvc("metrics", "diff", "--json", cwd=repo))["metrics/models.json"]
    assert any(key.startswith("lr_high.") for key in diff) and not any(key.startswith("baseline.") for key in diff)
    # What changed fits a 200-column terminal: the parameter and that model's few metrics.
    shown = run([str(Path(sys.executable).parent / "dvc"), "exp", "show", "--only-changed", "--no-pager"], repo,
                env_extra={"COLUMNS": "200"})
    # (Rich drops what does not fit with "…": here only the hash columns of changed files.)
    header = next(line for line in shown.splitlines() if "Experiment" in line).split()
    assert {"lr_high.accuracy", "lr_high.loss", "lr_high.f1_macro", "lr_high.auroc_msp",
            "variants.lr_high.lr"} <= set(header), shown
    assert max(map(len, shown.splitlines())) <= 200
