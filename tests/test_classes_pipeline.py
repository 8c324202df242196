"""prepare.classes end to end: the real dvc.yaml on a tiny copy of the repo keeping five classes.

Everything downstream follows the subset: the models' output size, the confusion matrices, the
outlier study, the inspect stages, the report, and `cnnstudy predict`'s class names.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnstudy.params import REPO_ROOT
from test_pipeline import run, tiny_repo

pytestmark = pytest.mark.slow

KEPT = [3, 5, 8, 0, 9]  # renumbered 0..4 in this order


def five_class_params() -> dict:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["prepare"].update(per_class=20, classes=KEPT)
    params["train"].update(filters=[4, 8], dense=[16], batch_size=32, epochs=1)  # no k-fold
    params["sweep"].update(space={"optimizer": ["adam"], "lr": [0.001, 0.01]}, search="grid", epochs=1)
    params["tuned"].update(select="validation", epochs=2)
    params["variants"] = {"baseline": {}}
    params["outliers"].update(repeats=2, seeds=[])
    params["compare"].update(models=["lenet5"], epochs=1, max_train_images=60, keep_models=["lenet5"])
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return tiny_repo(tmp_path_factory.mktemp("classes"), five_class_params(), "five classes")


def read(repo, path):
    return json.loads((repo / path).read_text())


def test_every_stage_follows_the_subset(repo):
    import keras

    names = [str(c) for c in KEPT]
    info = read(repo, "data/prepared/info.json")
    assert info["class_names"] == names and info["raw_classes"] == KEPT
    for split in ("train", "val", "test"):
        with np.load(repo / "data" / "prepared" / f"{split}.npz") as npz:
            assert set(np.unique(npz["labels"])) == set(range(5))
    assert keras.models.load_model(repo / "models" / "baseline.keras").outputs[0].shape[-1] == 5
    assert keras.models.load_model(repo / "models" / "compare" / "lenet5.keras").outputs[0].shape[-1] == 5
    assert keras.models.load_model(repo / "models" / "tuned.keras").outputs[0].shape[-1] == 5  # the sweep's best
    assert np.asarray(read(repo, "metrics/eval/baseline.json")["confusion_matrix"]).shape == (5, 5)
    with np.load(repo / "metrics" / "eval" / "baseline" / "predictions.npz") as npz:
        assert npz["probabilities"].shape[1] == 5
    per_image = (repo / "metrics" / "outliers.csv").read_text().splitlines()
    column = per_image[0].split(",").index("predicted")
    assert {row.split(",")[column] for row in per_image[1:]} <= set(names)
    recall = read(repo, "metrics/inspect.json")["recall"]
    assert set(recall) == {"baseline", "lenet5"} and all(len(r) == 5 for r in recall.values())
    assert (repo / "plots" / "inspect" / "baseline" / "feature_maps.png").stat().st_size > 0
    assert (repo / "plots" / "inspect" / "lenet5" / "saliency_outliers.png").stat().st_size > 0
    report = (repo / "reports" / "study.md").read_text()
    assert "## 10. What the networks learned and where they fail" in report and "### lenet5" in report
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (repo / "reports" / link).resolve().is_file(), link


def test_predict_names_the_kept_classes(repo):
    digit = next(p for p in sorted((REPO_ROOT / "data" / "outliers").iterdir()) if p.suffix == ".png")
    out = run([str(Path(sys.executable).parent / "cnnstudy"), "predict", "--json", str(digit)], repo)
    answer = json.loads(out)
    assert answer["class"] in {str(c) for c in KEPT} and len(answer["top3"]) == 3
    assert answer["model"] == "tuned"  # the default: the tuned model once its stage has run
    threshold = read(repo, "metrics/outliers/details.json")["detection"]["tuned"]["msp"]["threshold95"]
    assert answer["ood_threshold"] == pytest.approx(threshold, abs=1e-6)
