"""The inspect stages' outputs: figures (digits drawn alike), errors, layer table, saliency,
cross-model recall and confusions; stages/inspect_models.py run in a project directory."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cnnstudy import runtime

runtime.select_device("cpu")

from cnnstudy import image_prep, inspect_outputs, inspection  # noqa: E402
from cnnstudy.figures import inspect as F  # noqa: E402
from cnnstudy.params import REPO_ROOT  # noqa: E402
from cnnstudy.summary import read_history  # noqa: E402
from cnnstudy.train_cnn import train_cnn  # noqa: E402

CLASSES = tuple("0123456789")


@pytest.fixture(scope="module")
def project(tmp_path_factory, digits, tiny):
    """models/baseline.keras, dvclive/baseline, data/prepared and data/outliers, as after make repro."""
    root = tmp_path_factory.mktemp("inspect")
    images, labels = digits
    model, _ = train_cnn(tiny, (images[:300], labels[:300]), (images[300:350], labels[300:350]), 2,
                         log_dir=root / "dvclive" / "baseline")
    (root / "models").mkdir()
    model.save(root / "models" / "baseline.keras")
    prepared = root / "data" / "prepared"
    prepared.mkdir(parents=True)
    for split, part in (("train", slice(0, 300)), ("val", slice(300, 350)), ("test", slice(300, 400))):
        np.savez(prepared / f"{split}.npz", images=images[part], labels=labels[part],
                 source=np.arange(400)[part])
    (prepared / "info.json").write_text(json.dumps({"dataset": "mnist-sample", "class_names": list(CLASSES)}))
    shutil.copytree(REPO_ROOT / "data" / "outliers", root / "data" / "outliers")
    return {"root": root, "model": model, "test": (images[300:400], labels[300:400])}


def digit_axes_style(fig) -> set:
    """(cmap, vmin, vmax) of every image drawn from digit pixels (28x28 uint8) in the figure."""
    styles = set()
    for ax in fig.axes:
        for image in ax.get_images():
            if image.get_array().shape == (28, 28) and image.get_array().dtype == np.uint8:
                styles.add((image.get_cmap().name, *image.get_clim()))
    return styles


def test_inspect_model_writes_everything(project, tmp_path):
    model, test = project["model"], project["test"]
    images, _ = image_prep.load_folder(project["root"] / "data" / "outliers")
    history = read_history(project["root"] / "dvclive" / "baseline")
    summary = inspect_outputs.inspect_model(model, "baseline", test, CLASSES, tmp_path, outlier_images=images[:4],
                                            history=history, feature_indices=[0, 5])  # the stage test: default
    for name in ("errors.png", "errors.csv", "layers.md", "filters.png", "kernels_deeper.png", "history.png",
                 "feature_maps.png", "saliency_digits.png", "saliency_outliers.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    predicted = model.predict_on_batch(test[0][..., None]).argmax(1)
    wrong = int(np.sum(predicted != test[1]))
    assert summary["mistakes"] == wrong > 0
    with open(tmp_path / "errors.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == wrong
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert all(r["true"] != r["predicted"] for r in rows)
    assert f"Total: {model.count_params():,} parameters." in (tmp_path / "layers.md").read_text()
    assert summary["saliency"]["max_completeness_gap"] < 0.02
    assert len(history["val_loss"]) == 2


def test_digits_are_drawn_alike_in_every_figure(project):
    images, labels = project["test"]
    mistakes = inspection.mistakes(labels, (labels + 1) % 10, np.full((len(labels), 10), 0.1))
    maps = inspection.feature_maps(project["model"], images[:3])
    figures = [F.error_gallery(images, mistakes, CLASSES, "errors", limit=5),
               F.feature_maps_figure(images[:3], labels[:3], maps, CLASSES, "maps")]
    for fig in figures:
        assert digit_axes_style(fig) == {("gray_r", 0.0, 255.0)}
    # The saliency figure composes each digit and its attributions into one RGB image: its left
    # part is the digit exactly as gray_r over 0..255 draws it.
    saliency = F.saliency_figure(images[:2], np.random.default_rng(0).normal(size=(2, 28, 28)), ["a", "b"], "s")
    rgb = saliency.axes[1].get_images()[0].get_array()
    gray_r = F.plt.get_cmap("gray_r")(images[1].squeeze() / 255.0)[..., :3]
    np.testing.assert_allclose(rgb[:, :28], gray_r)
    assert rgb.shape == (28, 28 + 2 + 28, 3) and saliency.axes[1].get_title().startswith("b\nattribution ±")
    gallery = figures[0]
    titles = [ax.get_title() for ax in gallery.axes if ax.get_title()]
    assert titles[0] == f"{labels[0]}→{(labels[0] + 1) % 10} 0.10" and len(titles) == 5
    assert "first 5 of 100" in gallery._suptitle.get_text()


def test_feature_map_tiles_are_scaled_per_channel_and_enlarged():
    values = np.zeros((2, 3, 3, 4))
    values[0, 1, 1, 2], values[1, 0, 0, 2] = 2.0, 4.0  # channel 2's maximum over both digits: 4
    values[0, :, :, 0] = 1.0  # a channel that is constant for this digit
    strip, centres = F._tile_strip(values, 0, [2, 0], min_size=12)
    assert strip.shape == (12, 12 + 1 + 12)  # 3x3 maps enlarged 4x, one blank column between them
    assert np.isnan(strip[:, 12]).all() and not np.isnan(strip[:, :12]).any()
    assert strip[4:8, 4:8].tolist() == [[0.5] * 4] * 4 and strip[:4, :4].max() == 0.0  # 2 of 4
    assert (strip[:, 13:] == 1.0).all()  # channel 0 on its own scale
    assert centres == [5.5, 18.5]


def test_history_and_filter_figures(project):
    history = {"accuracy": [0.5, 0.8], "val_accuracy": [0.6, 0.7], "loss": [1.0, 0.5], "val_loss": [0.9, 0.95]}
    fig = F.history_figure(history, "h")
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
    fig = F.history_figure({}, "none recorded")  # says so on each panel, no empty legend
    assert [[t.get_text() for t in ax.texts] for ax in fig.axes] == [["no accuracy per epoch recorded"],
                                                                     ["no loss per epoch recorded"]]
    assert all(ax.get_legend() is None for ax in fig.axes)
    filters = inspection.first_layer_filters(project["model"])
    fig = F.filters_figure(filters, "f")
    kernels = [im for ax in fig.axes for im in ax.get_images()]
    assert len(kernels) == len(filters) and kernels[0].get_clim()[0] == -kernels[0].get_clim()[1]


def test_across_models_tables(tmp_path):
    a = np.diag([9] * 10)
    a[7, 9] = 6
    a[4, 9] = 2
    b = np.diag([10] * 10)
    b[7, 9] = 1
    result = inspect_outputs.across_models({"baseline": a, "wide": b}, CLASSES, tmp_path, tmp_path / "inspect.md")
    text = (tmp_path / "inspect.md").read_text()
    assert "- **baseline** predicts 7 as 9 six times; predicts 4 as 9 twice." in text
    assert "| 7 | 9 | 7 | 6 | 1 |" in text
    assert result["confused_pairs"][0] == {"true": "7", "predicted": "9", "total": 7, "per_model": {"baseline": 6, "wide": 1}}
    assert result["recall"]["baseline"][7] == pytest.approx(9 / 15)
    assert (tmp_path / "recall.png").stat().st_size > 0
    assert (tmp_path / "recall.csv").read_text().splitlines()[2].startswith("wide,1,")


def run_inspect_stage(root):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "inspect_models.py")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def stage_project(project, root, variants: str, seed: int = 42):
    """The project with a params.yaml of these variants and no standard models, and the
    baseline's test predictions as stage evaluate writes them."""
    from cnnstudy.evaluation import predict_proba
    from cnnstudy.predictions import predictions_file, write_predictions

    if not root.exists():
        shutil.copytree(project["root"], root)
    text = (REPO_ROOT / "params.yaml").read_text()
    text = text[:text.index("variants:")] + f"variants:\n{variants}\n" + text[text.index("sweep:"):]
    text = text.replace("  seed: 42\n  device:", f"  seed: {seed}\n  device:")
    text = re.sub(r"(?m)^  models: .*$", "  models: []", text)
    (root / "params.yaml").write_text(text)
    images, labels = project["test"]
    write_predictions(root / predictions_file("baseline"), labels, predict_proba(project["model"], images), CLASSES)


def test_inspect_stage_draws_each_model_once_and_keeps_unchanged_ones(project, tmp_path):
    """stages/inspect_models.py in a project: every model drawn, then kept while its inputs are
    the same; redrawn when one changes or a file is missing; folders of dropped models removed."""
    root = tmp_path / "project"
    stage_project(project, root, "  baseline: {}")
    done = run_inspect_stage(root)
    assert done.returncode == 0, done.stderr[-3000:]
    out = root / "plots" / "inspect" / "baseline"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "baseline" and summary["saliency"]["method"] == "integrated gradients"
    assert (out / "saliency_outliers.png").stat().st_size > 0
    assert set(summary["files"]) == {p.name for p in out.iterdir()} - {"summary.json"}
    assert f"inspect_models: baseline: {summary['mistakes']} mistakes of 100" in done.stdout
    assert json.loads((root / "metrics" / "inspect.json").read_text())["recall"].keys() == {"baseline"}
    drawn = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    (root / "plots" / "inspect" / "dropped").mkdir()
    again = run_inspect_stage(root)
    assert "inspect_models: baseline: inputs unchanged, kept" in again.stdout
    assert "inspect_models: dropped: no longer a model of the study" in again.stdout
    assert not (root / "plots" / "inspect" / "dropped").exists()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == drawn

    (out / "errors.png").unlink()  # an incomplete folder is redrawn
    third = run_inspect_stage(root)
    assert "inputs unchanged" not in third.stdout and (out / "errors.png").is_file()
    stage_project(project, root, "  baseline: {}", seed=7)  # an input of its figures changed
    fourth = run_inspect_stage(root)
    assert "inputs unchanged" not in fourth.stdout
    assert json.loads((out / "summary.json").read_text())["inputs_sha256"] != summary["inputs_sha256"]


def test_inspect_stage_tuned_and_missing_models(project, tmp_path):
    """The tuned model (stage tuned's files) is inspected like a variant once it exists; a
    missing model file is one line naming the stage that makes it."""
    root = tmp_path / "project"
    stage_project(project, root, "  baseline: {}\n  batch_norm: {batch_norm: true}")
    missing = run_inspect_stage(root)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: models/batch_norm.keras: missing; run `dvc repro --force train@batch_norm`"
    stage_project(project, root, "  baseline: {}")
    (root / "metrics" / "train").mkdir(parents=True)
    (root / "metrics" / "train" / "tuned.json").write_text(json.dumps({"model": "tuned", "config": {"lr": 0.003}}))
    no_model = run_inspect_stage(root)
    assert no_model.stderr.strip() == "error: models/tuned.keras: missing; run `dvc repro tuned`"
    shutil.copy(root / "models" / "baseline.keras", root / "models" / "tuned.keras")
    shutil.copytree(root / "dvclive" / "baseline", root / "dvclive" / "tuned")
    shutil.copytree(root / "metrics" / "eval" / "baseline", root / "metrics" / "eval" / "tuned")
    done = run_inspect_stage(root)
    assert done.returncode == 0, done.stderr[-3000:]
    out = root / "plots" / "inspect" / "tuned"
    tuned = json.loads((out / "summary.json").read_text())
    assert tuned["model"] == "tuned" and (out / "feature_maps.png").stat().st_size > 0
    assert (out / "history.png").stat().st_size > 0
    # the same model file gives the same findings as under its first name
    baseline = json.loads((root / "plots" / "inspect" / "baseline" / "summary.json").read_text())
    same = {"model", "inputs_sha256"}
    assert {k: v for k, v in baseline.items() if k not in same} == {k: v for k, v in tuned.items() if k not in same}
    assert json.loads((root / "metrics" / "inspect.json").read_text())["recall"].keys() == {"baseline", "tuned"}


def test_recorded_predictions_only(project, tmp_path):
    """A standard model whose file was not kept: architecture and recorded classes."""
    from cnnstudy.standard_models import build_standard

    images, labels = project["test"]
    predicted = labels.copy()
    predicted[[3, 50]] = (labels[[3, 50]] + 1) % 10
    model = build_standard("lenet5")
    summary = inspect_outputs.inspect_predictions(model, "lenet5", (images, labels), CLASSES, tmp_path, predicted,
                                                  history={"loss": [1.0], "val_loss": [1.2]})
    assert summary["mistakes"] == 2 and summary["test_accuracy"] == 0.98
    assert summary["most_confident_mistakes"][0] == {"test_index": 3, "true": str(labels[3]),
                                                     "predicted": str((labels[3] + 1) % 10), "confidence": None}
    assert (tmp_path / "errors.csv").read_text().splitlines()[1] == f"3,{labels[3]},{(labels[3] + 1) % 10},"
    assert "| c1 | Conv2D | (N, 28, 28, 6) | 156 |" in (tmp_path / "layers.md").read_text()
    assert (tmp_path / "history.png").exists() and not (tmp_path / "filters.png").exists()
