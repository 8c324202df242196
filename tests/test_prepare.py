"""The prepare stage: stratified splits, their outputs, the loader training uses."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnstudy.data import load_prepared
from cnnstudy.registry import DATASETS
from cnnstudy.errors import DataError
from cnnstudy.params import PrepareParams, SplitParams
from cnnstudy.prepare import run_prepare, split_counts, split_dataset

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "bundled" / "mnist-sample"
DIGITS = DATASETS["mnist"].class_names


def params(pool=True, per_class=20, seed=42, split=(0.6, 0.2, 0.2)) -> PrepareParams:
    return PrepareParams(pool=pool, per_class=per_class, split=SplitParams(*split), seed=seed)


def synthetic(per_class_train=30, per_class_test=10, seed=0):
    """Shuffled labels; pixel (0, 0..1) holds the image's own index so sources can be checked."""
    rng = np.random.default_rng(seed)

    def make(n_per_class, offset):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), n_per_class))
        images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
        ids = offset + np.arange(len(labels))
        images[:, 0, 0], images[:, 0, 1] = ids // 256, ids % 256
        return images, labels

    train = make(per_class_train, 0)
    return (*train, *make(per_class_test, len(train[1])))


ARRAYS = synthetic()


def split(p: PrepareParams, arrays=ARRAYS):
    return split_dataset(*arrays, p, DIGITS)


def per_class(labels) -> list[int]:
    return np.bincount(labels, minlength=10).tolist()


# ---------------------------------------------------------------- splitting
def test_split_counts_round_and_sum():
    assert split_counts(600, SplitParams(0.6, 0.2, 0.2)) == (360, 120, 120)
    assert split_counts(7, SplitParams(0.6, 0.2, 0.2)) == (4, 1, 2)
    for n in range(1, 50):
        counts = split_counts(n, SplitParams(0.5, 0.45, 0.05))
        assert sum(counts) == n and min(counts) >= 0


def test_exact_per_class_counts():
    splits = split(params(per_class=20))
    assert {name: per_class(s.labels) for name, s in splits.items()} == {
        "train": [12] * 10, "val": [4] * 10, "test": [4] * 10}


def test_images_match_sources_and_splits_are_disjoint():
    splits = split(params(per_class=40))  # 30 train + 10 t10k per class: needs both files
    all_labels = np.concatenate([ARRAYS[1], ARRAYS[3]])
    sources = []
    for s in splits.values():
        ids = s.images[:, 0, 0].astype(int) * 256 + s.images[:, 0, 1]
        assert np.array_equal(ids, s.source) and np.array_equal(s.labels, all_labels[s.source])
        sources.append(set(s.source.tolist()))
    assert sum(map(len, sources)) == 400 and len(set.union(*sources)) == 400


def test_same_seed_same_split_other_seed_differs():
    a, b, c = split(params(seed=7)), split(params(seed=7)), split(params(seed=8))
    for name in a:
        assert np.array_equal(a[name].source, b[name].source)
        assert np.array_equal(a[name].images, b[name].images)
    assert any(set(a[n].source.tolist()) != set(c[n].source.tolist()) for n in a)


def test_per_class_too_large():
    with pytest.raises(DataError) as info:
        split(params(per_class=41))
    message = str(info.value)
    assert "prepare.per_class is 41" in message and "class '0' has only 40 images" in message


def test_per_class_too_large_without_pool_counts_train_files_only():
    with pytest.raises(DataError, match="class '0' has only 30 images in the train files"):
        split(params(pool=False, per_class=31))


def test_pool_false_keeps_all_of_t10k_as_test():
    splits = split(params(pool=False, per_class=20))
    n_train_file = len(ARRAYS[1])
    assert np.array_equal(splits["test"].source, n_train_file + np.arange(len(ARRAYS[3])))
    assert np.array_equal(splits["test"].images, ARRAYS[2]) and np.array_equal(splits["test"].labels, ARRAYS[3])
    # train : val = 0.6 : 0.2 of the 20 drawn per class; all from the train files.
    assert per_class(splits["train"].labels) == [15] * 10 and per_class(splits["val"].labels) == [5] * 10
    assert splits["train"].source.max() < n_train_file and splits["val"].source.max() < n_train_file


def test_per_class_all_uses_every_image_once():
    images, labels, test_images, test_labels = synthetic()
    labels = labels.copy()
    labels[labels == 9] = 8  # uneven classes: 8 has 60 train images, 9 none in train
    splits = split(params(per_class=None), (images, labels, test_images, test_labels))
    assert sorted(np.concatenate([s.source for s in splits.values()]).tolist()) == list(range(400))
    assert per_class(splits["train"].labels)[8:] == [round(70 * 0.6), 6]


def test_empty_split_is_an_error():
    with pytest.raises(DataError, match="the val split gets no images"):
        split(params(per_class=1))


# ---------------------------------------------------------------- outputs
@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """The prepare stage's work on the bundled sample, with params.yaml's defaults."""
    root = tmp_path_factory.mktemp("bundled")
    raw = root / "raw"
    raw.mkdir()
    for gz in BUNDLED.glob("*.gz"):
        shutil.copyfile(gz, raw / gz.name)
    (raw / "manifest.json").write_text(json.dumps({"dataset": "mnist-sample", "files": {}}))
    info = run_prepare(params(per_class=600), raw, root / "prepared", root / "metrics" / "data.json",
                       root / "plots")
    return root, info


def test_metrics_on_bundled_sample(bundled_run):
    root, info = bundled_run
    headline = json.loads((root / "metrics" / "data.json").read_text())
    assert headline == {"dataset": "mnist-sample", "images": {"train": 3600, "val": 1200, "test": 1200}}
    metrics = json.loads((root / "metrics" / "data" / "details.json").read_text())
    assert metrics["dataset"] == "mnist-sample"
    for name, n in (("train", 360), ("val", 120), ("test", 120)):
        assert metrics[name]["per_class"] == {str(d): n for d in range(10)}
        assert metrics[name]["images"] == 10 * n
        assert metrics[name]["resolution"] == "28x28" and metrics[name]["bytes_per_image"] == 784
        assert metrics[name]["total_mb"] == round(10 * n * 784 / 1e6, 3)
    assert info["counts"] == {"train": 3600, "val": 1200, "test": 1200}
    assert json.loads((root / "prepared" / "info.json").read_text()) == info


def test_plots_on_bundled_sample(bundled_run):
    root, _ = bundled_run
    with open(root / "plots" / "class_distribution.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and rows[0] == {"split": "train", "class": "0", "count": "360"}
    for png in ("class_distribution.png", "samples.png"):
        assert (root / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_prepared_round_trip(bundled_run):
    root, _ = bundled_run
    data = load_prepared(root / "prepared")
    assert data.dataset == "mnist-sample" and data.class_names == DIGITS and data.num_classes == 10
    images, labels = data.train
    assert images.shape == (3600, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.uint8
    assert per_class(data.split("test")[1]) == [120] * 10


def test_load_prepared_missing_dir(tmp_path):
    with pytest.raises(DataError, match=r"prepared data not found; run `dvc repro prepare`"):
        load_prepared(tmp_path / "prepared")


def test_load_prepared_bad_arrays(bundled_run, tmp_path):
    root, _ = bundled_run
    shutil.copytree(root / "prepared", tmp_path / "prepared")
    np.savez(tmp_path / "prepared" / "val.npz", images=np.zeros((3, 28, 28), np.float32),
             labels=np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"val.npz: images are \(3, 28, 28\) float32, expected "
                                        r"\(N, 28, 28\) uint8; run `dvc repro prepare`"):
        load_prepared(tmp_path / "prepared")
    (tmp_path / "prepared" / "test.npz").unlink()
    np.savez(tmp_path / "prepared" / "val.npz", images=np.zeros((3, 28, 28), np.uint8),
             labels=np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"3 images but 2 labels; run `dvc repro prepare`"):
        load_prepared(tmp_path / "prepared")


# ---------------------------------------------------------------- the stage script
def stage_copy(tmp_path) -> Path:
    """A minimal copy of the repository that the stage script can run in."""
    shutil.copytree(REPO / "src" / "cnnstudy", tmp_path / "src" / "cnnstudy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "stages").mkdir()
    shutil.copyfile(REPO / "stages" / "prepare.py", tmp_path / "stages" / "prepare.py")
    shutil.copyfile(REPO / "params.yaml", tmp_path / "params.yaml")
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for gz in BUNDLED.glob("*.gz"):
        shutil.copyfile(gz, raw / gz.name)
    (raw / "manifest.json").write_text(json.dumps({"dataset": "mnist-sample", "files": {}}))
    return tmp_path


def test_stage_script_runs_without_keras(tmp_path):
    root = stage_copy(tmp_path)
    # Fail loudly if the stage imports TensorFlow or Keras: they cost seconds to load.
    code = ("import runpy, sys; runpy.run_path('stages/prepare.py', run_name='__main__'); "
            "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    # As dvc.yaml runs it: the copy's own src/ first, not the package installed in the venv.
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "prepare: mnist-sample" in done.stdout
    assert (root / "metrics" / "data.json").is_file() and (root / "data" / "prepared" / "train.npz").is_file()

    (root / "data" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    done = subprocess.run([sys.executable, "stages/prepare.py"], cwd=root, capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: data/raw/t10k-labels-idx1-ubyte.gz: not a gzip file")
