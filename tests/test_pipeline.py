"""End to end: the real dvc.yaml on a copy of the repo with a tiny configuration.

Runs `dvc repro`, a no-op repro, a forced re-training (determinism across
processes), a one-variant change (only that variant reruns), `dvc exp run -S`,
`dvc metrics diff`, `dvc plots show` and a queued experiment. The tiny run keeps five
classes (prepare.classes), so the same run also shows every stage following a class
subset: the models' output size, the confusion matrices, the outlier study, the inspect
stages, the report and `cnnstudy predict`'s class names. A few minutes on two cores.
"""

import json
import re
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnstudy.params import REPO_ROOT

pytestmark = pytest.mark.slow

KEPT = [3, 5, 8, 0, 9]  # prepare.classes of the tiny run, renumbered 0..4 in this order
GENERATED = ("dvc.lock", "metrics/", "plots/", "dvclive/", "models/", "data/raw/", "data/prepared/", "reports/")


def tiny_params() -> dict:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["prepare"].update(per_class=30, classes=KEPT)
    params["kfold"].update(folds=2, max_epochs=2, patience=1)
    params["train"].update(filters=[4, 8], dense=[16], batch_size=32)
    params["variants"] = {"baseline": {}, "lr_high": {"lr": 0.01}, "dropout_high": {"dropout": 0.4}}
    if "outliers" in params:
        params["outliers"].update(repeats=2, seeds=[])
    if "compare" in params:
        params["compare"].update(models=["lenet5"], epochs=1, max_train_images=100)
    if "sweep" in params:
        params["sweep"].update(space={"optimizer": ["adam"], "lr": [0.001, 0.01]}, search="grid", epochs=2,
                               heatmap=["optimizer", "lr"])
    if "tuned" in params:
        params["tuned"].update(select="sweep")  # epochs from the best trial's curve (tests/test_tuned.py: a fit of its own)
    return params


def run(args, cwd, env_extra=None, **kw):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(env_extra or {})}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def dvc(*args, cwd):
    return run([str(Path(sys.executable).parent / "dvc"), *args], cwd)


def git(*args, cwd):
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd)


def tiny_repo(root: Path, params: dict, message: str) -> Path:
    """A git repo at `root` holding the project's source files (no generated outputs) and `params`,
    after one `dvc repro`."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if name.startswith(GENERATED) or not (REPO_ROOT / name).is_file():
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", message, cwd=root)
    dvc("repro", cwd=root)
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The project with tiny params, reproduced once and committed with its results."""
    root = tiny_repo(tmp_path_factory.mktemp("pipeline"), tiny_params(), "tiny")
    git("add", "-A", cwd=root)
    git("commit", "-qm", "results", cwd=root)
    return root


def read(repo, path):
    return json.loads((repo / path).read_text())


def test_repro_writes_every_output(repo):
    data = read(repo, "metrics/data.json")
    assert sum(data["images"].values()) == 150
    assert set(read(repo, "metrics/data/details.json")["train"]["per_class"].values()) == {18}
    summary = read(repo, "metrics/summary.json")
    assert list(summary) == ["baseline", "lr_high", "dropout_high", "tuned"]  # tuned: the sweep's best, refit
    for name in summary:
        assert (repo / "models" / f"{name}.keras").is_file()
        assert 0.0 <= read(repo, f"metrics/eval/{name}.json")["accuracy"] <= 1.0
        assert (repo / "metrics" / "eval" / name / "predictions.npz").is_file()
    assert read(repo, "metrics/kfold.json")["chosen_epochs"] >= 1
    selection, best = read(repo, "metrics/train/tuned.json")["epoch_selection"], read(repo, "metrics/sweep.json")["best"]
    assert selection["trial"] == best["key"] and selection["val_loss"] == best["val_loss_curve"]
    assert len(selection["val_loss"]) == 2 and read(repo, "metrics/train/tuned.json")["epochs"] == selection["chosen_epochs"]
    assert "| baseline |" in (repo / "metrics/summary.md").read_text()
    # three tests against the baseline (two variants and the tuned model): Holm's p is at least
    # the raw one, at most three times it
    for name in ("lr_high", "dropout_high", "tuned"):
        raw, corrected = summary[name]["mcnemar_p"], summary[name]["mcnemar_p_holm"]
        assert raw <= corrected <= min(1.0, 3 * raw) + 1e-12
    environment = read(repo, "metrics/environment.json")
    assert environment["cores"] >= 1 and environment["precision"] and environment["versions"]["keras"]
    assert read(repo, "metrics/retrained.json") == {}  # outliers.seeds is empty here: no seed spread
    report = (repo / "reports/study.md").read_text()
    for section in ("## 1. Input analysis", "## 4. Model comparison", "McNemar", "Holm", "Run on ",
                    "Models are chosen on the validation split", "## 8. Out-of-distribution images",
                    "AUROC", "## 9. Standard architectures", "lenet5", "## 11. The sweep and the tuned model",
                    "**2 trials**", "| rank | optimizer | lr | val acc |", "### The tuned model", "**Reading:**",
                    "| tuned |"):
        assert section in report, section
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (repo / "reports" / link).resolve().is_file(), link


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
    assert set(recall) == {"baseline", "lr_high", "dropout_high", "tuned", "lenet5"}
    assert all(len(r) == 5 for r in recall.values())
    assert (repo / "plots" / "inspect" / "baseline" / "feature_maps.png").stat().st_size > 0
    assert read(repo, "plots/inspect/tuned/summary.json")["test_accuracy"] == pytest.approx(
        read(repo, "metrics/eval/tuned.json")["accuracy"])  # inspect_tuned looked at the same model evaluate_tuned did
    assert (repo / "plots" / "inspect" / "tuned" / "feature_maps.png").stat().st_size > 0
    assert (repo / "plots" / "inspect" / "lenet5" / "saliency_outliers.png").stat().st_size > 0
    report = (repo / "reports" / "study.md").read_text()
    assert "## 10. What the networks learned and where they fail" in report and "### lenet5" in report
    assert "### tuned" in report and "../plots/inspect/tuned/filters.png" in report
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


def test_second_repro_has_nothing_to_do(repo):
    out = dvc("repro", cwd=repo)
    assert "Data and pipelines are up to date" in out


def test_retraining_in_a_new_process_gives_identical_weights(repo):
    import keras

    before = keras.models.load_model(repo / "models/baseline.keras").get_weights()
    metrics_before = read(repo, "metrics/eval/baseline.json")
    dvc("repro", "-f", "-s", "train@baseline", cwd=repo)
    dvc("repro", "-s", "evaluate@baseline", cwd=repo)
    after = keras.models.load_model(repo / "models/baseline.keras").get_weights()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    metrics_after = read(repo, "metrics/eval/baseline.json")
    for key in ("accuracy", "loss", "f1_macro", "confusion_matrix"):
        assert metrics_after[key] == metrics_before[key]
    # Only timings moved: back to the committed results (rather than re-running every later
    # stage), so the experiments below start from a clean workspace.
    git("checkout", "--", ".", cwd=repo)
    dvc("checkout", "--force", cwd=repo)
    assert "Data and pipelines are up to date" in dvc("status", cwd=repo)


def test_metrics_are_the_headline_figures_only(repo):
    """`dvc metrics show` lists a few scalars per model; per-class reports stay ordinary outputs."""
    shown = dvc("metrics", "show", "--json", cwd=repo)
    assert "per_class" not in shown and "confusion_matrix" not in shown and "per_fold" not in shown
    metrics = json.loads(shown)
    files = next(iter(metrics.values()))["data"]
    models = ["baseline", "lr_high", "dropout_high", "tuned"]
    assert set(files) == {"metrics/data.json", "metrics/kfold.json", "metrics/models.json", "metrics/compare.json",
                          "metrics/outliers.json", "metrics/sweep.json"}
    headline = {"accuracy", "loss", "f1_macro", "model_file_mb", "train_time_s"}
    assert list(files["metrics/models.json"]["data"]) == models
    assert all(set(figures) == headline for figures in files["metrics/models.json"]["data"].values())
    assert set(files["metrics/compare.json"]["data"]["lenet5"]) == headline
    assert files["metrics/outliers.json"]["data"]["baseline"].keys() == {"auroc_msp", "auroc_energy"}
    assert files["metrics/models.json"]["data"]["baseline"]["accuracy"] == read(repo, "metrics/eval/baseline.json")[
        "accuracy"]
    # A handful of scalars per model (it was every per-class figure: ~90 KB for four tiny models).
    leaves = sum(len(figures) for name in ("models", "compare", "outliers")
                 for figures in files[f"metrics/{name}.json"]["data"].values())
    assert leaves == 5 * len(models) + 5 + 2 * len(models)
    assert len(dvc("metrics", "show", cwd=repo)) < 10_000


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_changing_one_variant_reruns_only_that_variant(repo):
    ran = ran_stages(dvc("exp", "run", "-S", "variants.lr_high.lr=0.02", cwd=repo))
    assert {"train@lr_high", "evaluate@lr_high"} <= ran
    assert not ran & {"fetch", "prepare", "kfold", "train@baseline", "train@dropout_high",
                      "evaluate@baseline", "evaluate@dropout_high", "retrain", "compare"}
    # What changed fits a 200-column terminal: the parameter and that model's few metrics.
    shown = run([str(Path(sys.executable).parent / "dvc"), "exp", "show", "--only-changed", "--no-pager"], repo,
                env_extra={"COLUMNS": "200"})
    # (Rich drops what does not fit with "…": here only the hash columns of changed files.)
    header = next(line for line in shown.splitlines() if "Experiment" in line).split()
    assert {"lr_high.accuracy", "lr_high.loss", "lr_high.f1_macro", "lr_high.auroc_msp",
            "variants.lr_high.lr"} <= set(header), shown
    assert max(map(len, shown.splitlines())) <= 200


def test_exp_run_changes_the_baseline_and_metrics_diff_shows_it(repo):
    before = read(repo, "metrics/train/baseline.json")
    ran = ran_stages(dvc("exp", "run", "-S", "train.lr=0.01", cwd=repo))
    assert {"kfold", "train@baseline", "train@dropout_high", "evaluate@baseline"} <= ran
    assert not ran & {"fetch", "prepare"}
    after = read(repo, "metrics/train/baseline.json")
    assert after["train_loss"] != before["train_loss"]
    diff = json.loads(dvc("metrics", "diff", "--json", cwd=repo))
    assert "metrics/models.json" in diff
    assert "baseline.accuracy" in diff["metrics/models.json"] or "baseline.loss" in diff["metrics/models.json"]


def test_plots_show_writes_html(repo):
    dvc("plots", "show", "-o", "plots_html", cwd=repo)
    html = (repo / "plots_html" / "index.html").read_text()
    assert "vega" in html.lower() and "Validation accuracy per epoch" in html


def test_queued_experiment_adding_a_variant(repo):
    """`dvc exp run --queue` runs in a temp copy holding only what git tracks; the variant
    added from the command line gets its own train/evaluate stages and joins every table."""
    dvc("exp", "run", "--queue", "-S", "+variants.dense_wide.dense=[32]", "-n", "queued-variant", cwd=repo)
    dvc("queue", "start", "-j", "1", cwd=repo)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = dvc("queue", "status", cwd=repo)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Success" in status, status
    shown = dvc("exp", "show", "--json", cwd=repo)
    assert "queued-variant" in shown
    assert any("dense_wide" in models.get("data", {}) for models in find_key(json.loads(shown), "metrics/models.json"))


def find_key(tree, key):
    """Every value stored under `key` at any depth of a JSON tree."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                yield v
            yield from find_key(v, key)
    elif isinstance(tree, list):
        for item in tree:
            yield from find_key(item, key)
