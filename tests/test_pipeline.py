"""End to end: the real dvc.yaml on a copy of the repo with a tiny configuration.

The session's tiny project (tests/tiny_project.py, reproduced once) checked for every output,
a no-op repro, a forced re-training (determinism across processes), the headline metrics,
`dvc plots show` and `cnnstudy predict`. The tiny run keeps five classes (prepare.classes), so
it also shows every stage following a class subset: the models' output size, the confusion
matrices, the outlier study, the inspect stages and the report. The experiments
(`dvc exp run -S`, `dvc metrics diff`, the queue) are in test_experiments.py and
test_queued_experiment.py, on copies of the same project.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnstudy.params import REPO_ROOT
from tiny_project import KEPT, VARIANTS, dvc, git, run, tiny_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The project with tiny params, reproduced and committed with its results."""
    return tiny_project(tmp_path_factory, "pipeline")


def read(repo, path):
    return json.loads((repo / path).read_text())


def test_repro_writes_every_output(repo):
    data = read(repo, "metrics/data.json")
    assert sum(data["images"].values()) == 150
    assert set(read(repo, "metrics/data/details.json")["train"]["per_class"].values()) == {18}
    summary = read(repo, "metrics/summary.json")
    assert list(summary) == [*VARIANTS, "tuned"]  # tuned: the sweep's best, refit
    for name in summary:
        assert (repo / "models" / f"{name}.keras").is_file()
        assert 0.0 <= read(repo, f"metrics/eval/{name}.json")["accuracy"] <= 1.0
        assert (repo / "metrics" / "eval" / name / "predictions.npz").is_file()
    assert read(repo, "metrics/kfold.json")["chosen_epochs"] >= 1
    selection, best = read(repo, "metrics/train/tuned.json")["epoch_selection"], read(repo, "metrics/sweep_best.json")["best"]
    assert best == read(repo, "metrics/sweep.json")["best"]
    assert selection["trial"] == best["key"] and selection["val_loss"] == best["val_loss_curve"]
    assert len(selection["val_loss"]) == 2 and read(repo, "metrics/train/tuned.json")["epochs"] == selection["chosen_epochs"]
    assert "| baseline |" in (repo / "metrics/summary.md").read_text()
    # two tests against the baseline (the variant and the tuned model): Holm's p is at least
    # the raw one, at most twice it
    for name in ("lr_high", "tuned"):
        raw, corrected = summary[name]["mcnemar_p"], summary[name]["mcnemar_p_holm"]
        assert raw <= corrected <= min(1.0, 2 * raw) + 1e-12
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
    assert set(recall) == {*VARIANTS, "tuned", "lenet5"}
    assert all(len(r) == 5 for r in recall.values())
    assert (repo / "plots" / "inspect" / "baseline" / "feature_maps.png").stat().st_size > 0
    assert read(repo, "plots/inspect/tuned/summary.json")["test_accuracy"] == pytest.approx(
        read(repo, "metrics/eval/tuned.json")["accuracy"])  # inspect_models looked at the same tuned model evaluate did
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
    file_before = (repo / "models/baseline.keras").read_bytes()
    metrics_before = read(repo, "metrics/eval/baseline.json")
    dvc("repro", "-f", "-s", "train@baseline", cwd=repo)
    assert (repo / "models/baseline.keras").read_bytes() == file_before  # the file too, not just the weights
    dvc("repro", "-s", "evaluate", cwd=repo)
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


def test_a_sweep_rerun_from_its_cache_leaves_the_tuned_model_alone(repo):
    """Every trial comes from the cache, so only the counts and times in metrics/sweep.json move;
    the tuned stage reads metrics/sweep_best.json, which stays as it was."""
    best = (repo / "metrics/sweep_best.json").read_bytes()
    dvc("repro", "-f", "-s", "sweep", cwd=repo)
    summary = read(repo, "metrics/sweep.json")
    assert summary["trained"] == 0 and summary["cached"] == summary["trials"] >= 2
    assert (repo / "metrics/sweep_best.json").read_bytes() == best
    changed = json.loads(dvc("status", "--json", cwd=repo))
    assert "report" in changed  # it shows the sweep's counts and times
    assert not {"tuned", "evaluate", "inspect_models"} & set(changed)
    git("checkout", "--", ".", cwd=repo)
    dvc("checkout", "--force", cwd=repo)
    assert "Data and pipelines are up to date" in dvc("status", cwd=repo)


def test_metrics_are_the_headline_figures_only(repo):
    """`dvc metrics show` lists a few scalars per model; per-class reports stay ordinary outputs."""
    shown = dvc("metrics", "show", "--json", cwd=repo)
    assert "per_class" not in shown and "confusion_matrix" not in shown and "per_fold" not in shown
    metrics = json.loads(shown)
    files = next(iter(metrics.values()))["data"]
    models = [*VARIANTS, "tuned"]
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


def test_plots_show_writes_html(repo):
    dvc("plots", "show", "-o", "plots_html", cwd=repo)
    html = (repo / "plots_html" / "index.html").read_text()
    assert "vega" in html.lower() and "Validation accuracy per epoch" in html
